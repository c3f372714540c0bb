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
            "VAELAB_CANCEL_POLL_S": "0.2", "VAELAB_METRIC_BATCH_SECONDS": "0.3",
            # a batch per logged step: each step gets its own wall time (the x-axis tests)
            "VAELAB_METRIC_BATCH_POINTS": "1"}
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


# ------------------------------------------------------------------ chart state (uPlot)
# The charts' uPlot instances hang on their panels (panel.uplot): the tests read the scales,
# data, cursor and series focus that the page really has, not pixels.

def _uplot(b: Browser, key: str, what: str) -> object:
    return b.js(f"const u = document.querySelector(\".chart[data-key='{key}']\").uplot;"
                f"return {what};")


def _pick_x(b: Browser, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(b.css("#xaxis")[0]).select_by_value(value)
    b.wait_css(f"body[data-x='{value}']")


def _hover(b: Browser, key: str, x: float, y: float | None = None) -> None:
    """Move the real mouse onto data coordinates (x, y) of chart ``key`` (y: mid-height)."""
    from selenium.webdriver.common.action_chains import ActionChains

    over = b.css(f".chart[data-key='{key}'] .u-over")[0]
    left = _uplot(b, key, f"u.valToPos({x!r}, 'x')")
    top = _uplot(b, key, f"u.valToPos({y!r}, 'y')") if y is not None else \
        over.size["height"] / 2
    ActionChains(b.driver).move_to_element_with_offset(
        over, int(left - over.size["width"] / 2), int(top - over.size["height"] / 2)).perform()


def test_job_page_wall_time_and_a_metric_as_x(browser: Browser, site: Site) -> None:
    browser.open(f"/jobs/{site.job}")
    browser.wait_css(f"{LOSS}[data-points]")
    assert _uplot(browser, "loss", "u.scales.x.time") is False
    _pick_x(browser, "time")
    api = _get(site.url, f"/api/v1/jobs/{site.job}/metrics?keys=loss&max_points=2000"
                         "&with_ts=true")["series"][0]
    job = _get(site.url, f"/api/v1/jobs/{site.job}")
    xs = _uplot(browser, "loss", "u.data[0]")
    assert _uplot(browser, "loss", "u.scales.x.time") is True
    assert browser.attr(LOSS, "data-x") == "wall time"
    assert len(xs) == len(api["steps"]) >= 5
    assert all(b > a for a, b in zip(xs, xs[1:], strict=False)), xs  # later steps, later times
    assert xs == api["ts"]  # each point at its own stamp
    from datetime import datetime

    started = datetime.fromisoformat(job["started_at"]).timestamp()
    finished = datetime.fromisoformat(job["finished_at"]).timestamp()
    assert started - 1 <= xs[0] and xs[-1] <= finished + 1
    lo, hi = _uplot(browser, "loss", "[u.scales.x.min, u.scales.x.max]")
    assert lo <= xs[0] and xs[-1] <= hi  # the axis spans the run's wall time

    _pick_x(browser, "rate")  # one metric against another: distortion over rate
    by_step = {k: dict(zip(s["steps"], s["values"], strict=True)) for k, s in (
        (s["key"], s) for s in _get(site.url, f"/api/v1/jobs/{site.job}/metrics?keys=rate,"
                                              "distortion&max_points=2000")["series"])}
    drawn = _uplot(browser, "distortion", "[u.data[0], u.data[1]]")
    common = [st for st in by_step["distortion"] if st in by_step["rate"]]
    assert len(drawn[0]) == len(common) >= 5  # a point per step that logged both
    assert set(zip(drawn[0], drawn[1], strict=True)) == {
        (by_step["rate"][st], by_step["distortion"][st]) for st in common}
    assert drawn[0] == sorted(drawn[0])
    assert _uplot(browser, "distortion", "u.series[1].points.size") == 5  # drawn as points
    assert browser.attr(".chart[data-key='distortion']", "data-x") == "rate"
    browser.shot("job-rate-distortion")


def test_log_y_toggles_the_scale_of_every_chart(browser: Browser, site: Site) -> None:
    for path in (f"/jobs/{site.job}", f"/compare?ids={','.join(site.sweep_jobs)}&keys=loss"):
        browser.open(path)
        keys = browser.js("return [...document.querySelectorAll('#charts .chart')]"
                          ".map(c => c.dataset.key)")
        assert keys and all(_uplot(browser, k, "u.scales.y.distr") == 1 for k in keys)
        browser.css("#logy")[0].click()
        browser.wait(lambda ks=keys: all(_uplot(browser, k, "u.scales.y.distr") == 3
                                         for k in ks), 5, "log scales")
        assert _uplot(browser, "loss", "u.scales.y.min") > 0
        assert browser.attr(LOSS, "data-log-y") == "1"
        browser.css("#logy")[0].click()
        browser.wait(lambda ks=keys: all(_uplot(browser, k, "u.scales.y.distr") == 1
                                         for k in ks), 5, "linear scales")


def test_hover_puts_every_job_chart_on_the_same_step(browser: Browser, site: Site) -> None:
    browser.open(f"/jobs/{site.job}")
    browser.wait_css(f"{LOSS}[data-points]")
    keys = browser.js("return [...document.querySelectorAll('#charts .chart')]"
                      ".map(c => c.dataset.key)")
    assert len(keys) >= 3
    steps = _uplot(browser, "loss", "u.data[0]")
    target = steps[len(steps) * 3 // 5]
    _hover(browser, "loss", target)
    at = {k: _uplot(browser, k, "u.cursor.idx == null ? null : u.data[0][u.cursor.idx]")
          for k in keys}
    hovered = at["loss"]
    assert hovered is not None and abs(steps.index(hovered) - steps.index(target)) <= 1
    assert all(v == hovered for v in at.values()), at  # the same step on every chart


def test_compare_hover_highlights_one_run_in_every_chart(browser: Browser, site: Site) -> None:
    ids = ",".join(site.sweep_jobs)
    browser.open(f"/compare?ids={ids}&keys=loss,rate,distortion")
    keys = ["loss", "rate", "distortion"]
    steps = _uplot(browser, "rate", "u.data[0]")
    i = len(steps) // 2
    while _uplot(browser, "rate", f"u.data[3][{i}]") is None:
        i += 1
    _hover(browser, "rate", steps[i], _uplot(browser, "rate", f"u.data[3][{i}]"))
    focus = {k: _uplot(browser, k, "u.series.slice(1).map(s => s._focus)") for k in keys}
    assert focus["rate"].count(True) == 1 and focus["rate"].count(False) == 3  # one run ...
    assert all(f == focus["rate"] for f in focus.values()), focus  # ... in every chart
    at = {k: _uplot(browser, k, "u.data[0][u.cursor.idx]") for k in keys}
    assert set(at.values()) == {steps[i]}

    _pick_x(browser, "time")  # elapsed wall time: every run drawn from its own start
    for k in keys:
        xs, n = _uplot(browser, k, "u.data[0]"), _uplot(browser, k, "u.series.length")
        assert n == 5 and xs == sorted(xs) and xs[0] >= 0
        for j in range(1, 5):
            ys = _uplot(browser, k, f"u.data[{j}]")
            mine = [x for x, y in zip(xs, ys, strict=True) if y is not None]
            assert len(mine) >= 2 and mine[0] < 1.0 and mine[-1] > mine[0]
    assert browser.attr(LOSS, "data-x") == "elapsed wall time (s)"


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
