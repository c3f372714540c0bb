"""The dashboard in headless Chromium against a real ``vaelab serve`` (SQLite, its own
worker). One server for the module: a small sweep (2 betas x 2 seeds) and a tagged job run to
the end first, then a long job runs while the live tests watch it; the queue page cancels it.

Every page is checked for console errors; the browser resolves no host but 127.0.0.1, so a
page that needs the internet fails here. A screenshot of each page is saved (see conftest).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import Procs, free_port, long_spec, tiny_spec, wait_for, wait_http
from tests.web.conftest import Browser

LOSS = ".chart[data-key='loss']"
AUTH: dict[str, str] = {}  # the serve's first admin (its admin.token), for the API calls


@dataclass
class Site:
    url: str
    token: str  # the first admin's, which the browser signs in with
    job: str  # a finished job (tagged)
    tag: str
    sweep: str
    sweep_jobs: list[str]
    long: str | None = None  # the running job, once started


def _get(url: str, path: str) -> dict:
    r = httpx.get(url + path, timeout=10, headers=AUTH)
    r.raise_for_status()
    return r.json()


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Site]:  # noqa: ANN001
    from tests.web.conftest import _need_browser

    _need_browser()  # no server either when the browser tests skip
    tmp = tmp_path_factory.mktemp("web")
    procs = Procs(tmp)
    port = free_port()
    env = {k: "" for k in ("VAELAB_DATABASE_URL", "VAELAB_BROKER_URL", "VAELAB_ARTIFACT_ROOT",
                           "VAELAB_DATA_DIR")}
    env |= {"VAELAB_AUTO_QUEUE": "cpu", "VAELAB_HEARTBEAT_INTERVAL_S": "0.5",
            "VAELAB_CANCEL_POLL_S": "0.2", "VAELAB_METRIC_BATCH_SECONDS": "0.3"}
    proc = procs.start(["serve", "--port", str(port), "--data-dir", str(tmp / "data")],
                       env, "serve")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/healthz", proc)
        token = (tmp / "data" / "admin.token").read_text().strip()
        AUTH["Authorization"] = f"Bearer {token}"
        tag = f"web{uuid.uuid4().hex[:6]}"
        job = httpx.post(url + "/api/v1/jobs", json={"spec": tiny_spec(), "tags": [tag]},
                         timeout=10, headers=AUTH).json()["id"]
        sweep = httpx.post(url + "/api/v1/sweeps", timeout=10, headers=AUTH, json={
            "name": "betas", "base": tiny_spec(epochs=1),
            "grid": {"kl.schedule.beta": [0.5, 2.0], "train.seed": [0, 1]}}).json()
        ids = [p["job"]["id"] for p in sweep["jobs"]]
        for jid in [job, *ids]:
            done = wait_for(lambda j=jid: (d := _get(url, f"/api/v1/jobs/{j}"))["status"]
                            in ("succeeded", "failed") and d, 180, f"job {jid} to finish")
            assert done["status"] == "succeeded", done["error"]
        yield Site(url, token, job, tag, sweep["id"], ids)
    finally:
        procs.close()


@pytest.fixture
def browser(chromium_driver, site, screenshot_dir) -> Iterator[Browser]:  # noqa: ANN001
    b = Browser(chromium_driver, site.url, screenshot_dir)
    b.sign_in(site.token)
    yield b
    errors = b.console_errors()
    assert not errors, errors
    assert not b.outside_requests()


def _rows(b: Browser) -> list[tuple[str, str]]:
    return [tuple(r) for r in b.js(  # the table is redrawn every 2 s: read it in the page
        "return [...document.querySelectorAll('#jobs tbody tr')]"
        ".map(r => [r.dataset.id, r.dataset.status])")]


def test_docs_render_offline(browser: Browser) -> None:
    browser.open("/docs", ready=".opblock")
    assert len(browser.css(".opblock")) > 20  # every operation of the API
    browser.shot("docs")
    browser.open("/redoc", ready="[data-section-id]")
    assert browser.css("h1")


def test_jobs_page_lists_a_job_and_filters_by_status(browser: Browser, site: Site) -> None:
    browser.open(f"/?tag={site.tag}")
    assert _rows(browser) == [(site.job, "succeeded")]
    browser.open("/")
    rows = _rows(browser)
    assert len(rows) == 5 and {s for _, s in rows} == {"succeeded"}
    assert browser.css("th") and "kl.schedule.beta" in browser.css("#head")[0].text
    browser.shot("jobs")
    browser.open("/?status=running")
    browser.wait_css("#count")
    assert _rows(browser) == []
    browser.open("/?status=succeeded&sort=created_at")
    assert [i for i, _ in _rows(browser)][0] == site.job  # oldest first


def test_sweep_page_draws_every_finished_job_and_the_frontier(browser: Browser,
                                                              site: Site) -> None:
    browser.open(f"/sweeps/{site.sweep}", ready="#plane svg")
    drawn = {c.get_attribute("data-job") for c in browser.css("#plane circle.job")}
    assert drawn == set(site.sweep_jobs)
    assert len(browser.css("#plane circle.mean")) == 2  # seeds vary: mean ± std per beta
    assert browser.css("#plane path.frontier") and browser.css("#plane circle.on-frontier")
    assert browser.css("#plane line.iso") and browser.css("#plane line.err")
    browser.shot("sweep")
    browser.css("#plane circle.job")[0].click()  # a click opens the job
    browser.wait(lambda: "/jobs/" in browser.driver.current_url, 10, "the job page")


def test_compare_group_by_draws_a_band_per_group(browser: Browser, site: Site) -> None:
    ids = ",".join(site.sweep_jobs)
    browser.open(f"/compare?ids={ids}&group_by=kl.schedule.beta&keys=loss,rate,distortion")
    panels = browser.css("#charts .chart")
    assert [p.get_attribute("data-key") for p in panels] == ["loss", "rate", "distortion"]
    assert all(p.get_attribute("data-bands") == "2" for p in panels)
    browser.shot("compare")
    browser.open(f"/compare?ids={ids}&keys=loss")
    assert browser.css("#charts .chart")[0].get_attribute("data-series") == "4"


def test_job_page_draws_its_points_and_a_sample_grid(browser: Browser, site: Site) -> None:
    browser.open(f"/jobs/{site.job}", ready="img.grid-prior")
    series = _get(site.url, f"/api/v1/jobs/{site.job}/metrics?keys=loss&max_points=2000")
    steps = series["series"][0]["steps"]
    browser.wait_css(f"{LOSS}[data-points]")
    assert int(browser.attr(LOSS, "data-points")) == len(steps)
    assert int(browser.attr(LOSS, "data-last-step")) == steps[-1]
    browser.wait(lambda: browser.js("const i = document.querySelector('img.grid-prior');"
                                    "return i.complete && i.naturalWidth > 0"), 10,
                 "the sample grid to load")
    assert browser.css("#rd table") and browser.css("#checkpoints a[href*='/checkpoints/']")
    assert "dataset:" in browser.css("#spec")[0].text
    browser.shot("job")
    # drag across the middle of the chart: the range is re-read from the API
    from selenium.webdriver.common.action_chains import ActionChains

    over = browser.css(f"{LOSS} .u-over")[0]
    width = over.size["width"]
    ActionChains(browser.driver).move_to_element_with_offset(over, -width // 5, 0) \
        .click_and_hold().move_by_offset(width // 3, 0).release().perform()
    zoomed = browser.wait(lambda: (n := int(browser.attr(LOSS, "data-points") or 0))
                          < len(steps) and n, 10, "the zoomed range")
    assert 0 < zoomed < len(steps)


def test_job_page_follows_a_running_job_live(browser: Browser, site: Site) -> None:
    site.long = httpx.post(site.url + "/api/v1/jobs", json={"spec": long_spec(400)},
                           headers=AUTH,
                           timeout=10).json()["id"]
    wait_for(lambda: _get(site.url, f"/api/v1/jobs/{site.long}")["progress"]["step"] > 20,
             60, "the long job to log")
    browser.open(f"/jobs/{site.long}", ready=f"{LOSS}[data-last-step]")
    for _ in range(3):  # a point the worker writes is drawn within 2 s
        newest = _get(site.url, f"/api/v1/jobs/{site.long}/metrics?keys=loss&max_points=2"
                      )["series"][0]["steps"][-1]
        written = time.monotonic()
        browser.wait(lambda n=newest: int(browser.attr(LOSS, "data-last-step") or 0) >= n,
                     2.0 - (time.monotonic() - written) + 0.5, f"step {newest} on the chart")
        time.sleep(0.5)
    browser.shot("job-live")


def test_queue_page_shows_the_running_job_and_cancels_it(browser: Browser, site: Site) -> None:
    assert site.long, "runs after the live test"
    browser.open("/queue", ready=f"#queue tr[data-id='{site.long}']")
    browser.shot("queue")
    browser.css(f"#queue tr[data-id='{site.long}'] button")[0].click()
    wait_for(lambda: _get(site.url, f"/api/v1/jobs/{site.long}")["status"] == "cancelled",
             30, "the job to be cancelled")
    browser.wait(lambda: not browser.css(f"#queue tr[data-id='{site.long}']"), 5,
                 "the queue to drop it")


def test_a_page_without_the_cookie_asks_for_a_token_and_returns(browser: Browser,
                                                                  site: Site) -> None:
    from selenium.webdriver.common.by import By

    browser.driver.delete_all_cookies()
    browser.driver.get(f"{site.url}/jobs/{site.job}")
    browser.wait_css("form#login")
    assert "/login?next=" in browser.driver.current_url
    browser.driver.find_element(By.NAME, "token").send_keys(site.token)
    browser.driver.find_element(By.CSS_SELECTOR, "form#login button").click()
    browser.wait_css("body[data-page='job'][data-ready='1']")
    assert browser.driver.current_url == f"{site.url}/jobs/{site.job}"
    cookie = browser.driver.get_cookie("vaelab_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
