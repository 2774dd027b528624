"""The built distribution works outside the repository: templates and data files included."""

import subprocess
import sys
import zipfile

import pytest


@pytest.mark.slow
def test_the_wheel_runs_from_outside_the_repository(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(root)], check=True, capture_output=True)
    (wheel,) = wheels.glob("cnn_modularity-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "modularity/output/templates/report.html.j2" in names
    assert "modularity/data/circuits_inceptionv1_units.csv" in names
    assert "modularity/data/timm_models.txt" in names  # the torch-free catalog of timm names
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    code = ("import modularity, sys; from modularity.output.report import _environment; "
            "from modularity.studies.enrichment import load_unit_labels; "
            "assert modularity.__file__.startswith(sys.argv[1]), modularity.__file__; "
            "_environment().get_template('report.html.j2'); "
            "from modularity.zoo.catalog import timm_architectures; assert len(timm_architectures()) > 1000; "
            "print(len(load_unit_labels()))")
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", code, str(target)], cwd=tmp_path, env=env, capture_output=True,
                          text=True)
    assert proc.returncode == 0 and int(proc.stdout.strip()) > 0, proc.stderr[-2000:]
    version = subprocess.run([sys.executable, "-m", "modularity", "--version"], cwd=tmp_path, env=env,
                             capture_output=True, text=True)
    assert version.stdout.startswith("modularity ")
