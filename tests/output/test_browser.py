"""The HTML report in headless Chromium, driven by Selenium and Debian's chromium-driver.

Skipped when Chromium, chromedriver or Selenium is missing (Debian:
``apt-get install chromium chromium-driver``; CI installs them). Selenium is
given the driver's path, so Selenium Manager never runs (it would try to
download a driver, and there may be no network).
"""

from __future__ import annotations

import shutil

import pytest

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                  "--disable-dev-shm-usage"]


def find_chromium() -> str | None:
    """Path of a Chromium binary, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def find_chromedriver() -> str | None:
    """Path of chromedriver (Debian's chromium-driver installs /usr/bin/chromedriver), or None."""
    return shutil.which("chromedriver")


pytestmark = [
    pytest.mark.skipif(find_chromium() is None or find_chromedriver() is None,
                       reason="Chromium or chromedriver is not installed "
                              "(Debian: apt-get install chromium chromium-driver); CI installs them"),
]


@pytest.fixture
def driver(tmp_path, monkeypatch):
    """A headless Chromium session with a fresh profile, its browser log captured at every level."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in requirements-test.txt")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.selenium_manager import SeleniumManager

    def no_manager(*args, **kwargs):
        raise AssertionError("Selenium Manager was invoked; the driver path should have been used")

    monkeypatch.setattr(SeleniumManager, "binary_paths", no_manager)
    options = webdriver.ChromeOptions()
    options.binary_location = find_chromium()
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=find_chromedriver(), log_output=str(tmp_path / "chromedriver.log"))
    browser = webdriver.Chrome(options=options, service=service)
    browser.set_page_load_timeout(60)
    try:
        yield browser
    finally:
        browser.quit()


def set_width(driver, width: int, height: int = 900) -> None:
    """Emulate a viewport ``width`` CSS pixels wide (a phone below 600 px)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})


def errors(driver) -> list[str]:
    """Console errors, uncaught exceptions and failed loads: the browser log's SEVERE entries."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def png_width(path) -> int:
    """Width in pixels from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return int.from_bytes(data[16:20], "big")


@pytest.mark.slow  # about 10 s, mostly building the report
def test_html_renders_in_headless_chromium(report_folder, driver, tmp_path):
    set_width(driver, 1280)
    folder, _ = report_folder
    driver.get((folder / "report.html").as_uri())  # returns after the load event
    state = driver.execute_script(
        "return {check: document.documentElement.dataset.check, images: document.images.length,"
        " broken: Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).length}")
    assert driver.save_screenshot(str(tmp_path / "report_1280.png"))
    set_width(driver, 400)
    overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert driver.save_screenshot(str(tmp_path / "report_400.png"))
    errs = errors(driver)
    assert (state["check"], state["broken"], errs, overflow <= 1) == ("ok", 0, [], True), state
    assert state["images"] >= 5
    assert [png_width(tmp_path / f"report_{w}.png") for w in (1280, 400)] == [1280, 400]


def test_console_errors_are_caught(driver, tmp_path):
    """The error check itself works: a console error, an uncaught exception and a failed load are all reported."""
    page = tmp_path / "bad.html"
    page.write_text("<!doctype html><img src='missing.png'>"
                    "<script>console.error('boom'); throw new Error('kaboom');</script>")
    driver.get(page.as_uri())
    messages = " ".join(errors(driver))
    assert "boom" in messages and "kaboom" in messages and "missing.png" in messages, messages
