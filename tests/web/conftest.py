"""Browser fixtures: headless Chromium (the system's chromium + chromedriver, through
selenium) against a real ``vaelab serve`` with its worker.

Without Chromium (or selenium) the browser tests skip, unless ``VAELAB_REQUIRE_BROWSER=1``
(CI), which fails them instead. Screenshots go to ``VAELAB_SCREENSHOT_DIR`` when set (the
README's are made that way), else to the test's temporary folder.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REQUIRE_BROWSER = os.environ.get("VAELAB_REQUIRE_BROWSER") == "1"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
# a request to any other host fails to resolve: a page that needs the internet breaks here
OFFLINE = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
WINDOW = (1400, 1000)  # a laptop screen


def _need_browser() -> None:
    missing = []
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[dev]')")
    if not CHROMIUM or not CHROMEDRIVER:
        missing.append("chromium and chromedriver (apt-get install chromium chromium-driver)")
    if missing:
        msg = "browser tests need " + " and ".join(missing)
        if REQUIRE_BROWSER:
            pytest.fail(msg)
        pytest.skip(msg)


class Browser:
    """A selenium driver with the dashboard's waits and checks."""

    def __init__(self, driver, base: str, shots: Path):  # noqa: ANN001
        self.driver, self.base, self.shots = driver, base, shots

    def open(self, path: str, ready: str = "body[data-ready='1']", timeout: float = 30):  # noqa: ANN201
        self.driver.get_log("browser")  # drop what earlier pages logged
        self.driver.get(self.base + path)
        return self.wait_css(ready, timeout)

    def sign_in(self, token: str) -> None:
        """The dashboard's sign-in link (what `vaelab serve` prints): sets the cookie the
        pages' API calls carry, then lands on the jobs page."""
        self.driver.get(f"{self.base}/login?token={token}")
        self.wait_css("body[data-page='jobs']")

    def wait_css(self, css: str, timeout: float = 30):  # noqa: ANN201
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout).until(
            ec.presence_of_element_located((By.CSS_SELECTOR, css)))

    def wait(self, predicate: Callable[[], object], timeout: float, what: str) -> object:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise TimeoutError(f"timed out after {timeout} s waiting for {what}")

    def css(self, css: str) -> list:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def attr(self, css: str, name: str) -> str | None:
        """An attribute of the first match, read in the page (charts are redrawn: an element
        handle may go stale between finding and reading it)."""
        return self.js("const e = document.querySelector(arguments[0]);"
                       "return e ? e.getAttribute(arguments[1]) : null", css, name)

    def js(self, script: str, *args: object) -> object:
        return self.driver.execute_script(script, *args)

    def console_errors(self) -> list[dict]:
        return [e for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]

    def outside_requests(self) -> list[str]:
        """Resources the page loaded from anywhere but the server."""
        names = self.js("return performance.getEntriesByType('resource').map(e => e.name)")
        return [n for n in names if not n.startswith(self.base) and not n.startswith("data:")]

    def shot(self, name: str) -> Path:
        """The page down to 2,400 px (the window is grown for it, then restored)."""
        path = self.shots / f"{name}.png"
        width, height = WINDOW
        full = self.js("return document.documentElement.scrollHeight")
        self.driver.set_window_size(width, min(max(height, int(full) + 140), 2400))
        time.sleep(0.3)  # charts follow their box's size
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(width, height)
        return path


@pytest.fixture(scope="session")
def chromium_driver(tmp_path_factory) -> Iterator[object]:  # noqa: ANN001
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--host-resolver-rules={OFFLINE}",
                "--disable-background-networking", "--disable-component-update",
                "--no-first-run", "--disable-sync"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory) -> Path:  # noqa: ANN001
    where = os.environ.get("VAELAB_SCREENSHOT_DIR")
    path = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path
