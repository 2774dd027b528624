"""The backends run the same tasks with the same results (modularity.backends)."""

import pytest

from modularity import analyze
from modularity.backends import make_backend
from modularity.errors import ModularityError
from tests.nets import PlantedNet


def _scaled(shared, item):
    return shared * item


def _numbers(result):
    return [layer for layer in result.to_dict()["layers"]]


def test_serial_backend_maps_in_order():
    with make_backend(10, jobs=1) as runner:
        assert runner.name == "serial" and runner.map(_scaled, [1, 2, 3]) == [10, 20, 30]


@pytest.mark.slow
def test_worker_processes_see_the_shared_object_and_keep_order():
    with make_backend(7, jobs=2) as runner:
        assert runner.workers == 2
        assert runner.map(_scaled, list(range(6))) == [0, 7, 14, 21, 28, 35]
        assert sorted(runner.as_completed(_scaled, [1, 2])) == [(0, 7), (1, 14)]


def test_an_unknown_backend_is_refused():
    with pytest.raises(ModularityError, match="unknown backend 'spark'; choose one of local, dask"):
        make_backend(None, backend="spark")


def test_a_scheduler_without_the_dask_backend_is_refused():
    with pytest.raises(ModularityError, match="needs backend='dask'"):
        make_backend(None, backend="local", scheduler="tcp://127.0.0.1:8786")


@pytest.mark.slow
def test_an_unreachable_scheduler_is_one_clear_error():
    pytest.importorskip("distributed")
    with (pytest.raises(ModularityError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"),
          make_backend(None, backend="dask", scheduler="tcp://127.0.0.1:9")):
        pass


@pytest.mark.slow
def test_a_dask_local_cluster_gives_the_numbers_of_one_process():
    pytest.importorskip("distributed")
    model = PlantedNet(signal=0.5, seed=6)
    kwargs = dict(n_permutations=8, seed=2, input_size=(8, 8), sequential_h=0)
    one = analyze(model, **kwargs)
    # Two workers, three layers: whole layers go to the workers.
    dask = analyze(model, backend="dask", jobs=2, **kwargs)
    assert _numbers(one) == _numbers(dask)
    # One layer, two workers: they share its draws.
    one_layer = analyze(model, layers="block", backend="dask", jobs=2, **kwargs)
    assert one_layer.layers[0].null_draws == one.layers[[x.name for x in one.layers].index("block")].null_draws


@pytest.mark.slow
def test_a_scheduler_address_gets_the_shared_object_scattered():
    """With an address the workers are not ours to fork: the graph is scattered to them (the remote route)."""
    distributed = pytest.importorskip("distributed")
    model = PlantedNet(signal=0.5, seed=6)
    kwargs = dict(layers="block", n_permutations=6, seed=2, input_size=(8, 8), sequential_h=0)
    one = analyze(model, **kwargs)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        remote = analyze(model, backend="dask", scheduler=cl.scheduler_address, **kwargs)
    assert _numbers(one) == _numbers(remote)


def _cli_stderr(tmp_path, *extra):
    """Stderr of a small 'analyze --backend dask' run in a fresh process (worker logs go to its stderr)."""
    import subprocess
    import sys

    args = ["analyze", "alexnet", "--weights", "none", "--layers", "features.3", "--permutations", "2",
            "--label-permutations", "100", "--backend", "dask", "--jobs", "1", "--out", str(tmp_path / "o"), *extra]
    # Only summary.json is written: figures and reports have nothing to do with the logs.
    code = ("import modularity.pipeline as p\n"
            "p.write_results = lambda result, graph, folder, **k: result.save(folder / 'summary.json')\n"
            f"from modularity.cli import main\nraise SystemExit(main({args!r}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stderr


@pytest.mark.slow
def test_dask_logs_are_quiet_unless_verbose(tmp_path):
    pytest.importorskip("distributed")
    # Lines a LocalCluster logs at INFO as it starts and stops (the CLI prints log messages bare).
    marks = ("Scheduler at:", "Start worker at:", "Register worker", "Scheduler closing")
    default = _cli_stderr(tmp_path / "b")  # progress messages on, still no scheduler or worker logs
    assert not any(m in default for m in marks), default[:2000]
    verbose = _cli_stderr(tmp_path / "c", "--verbose")  # the same run lets them through
    assert sum(m in verbose for m in marks) >= 3, verbose[:2000]
