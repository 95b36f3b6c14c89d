"""examples/browser in real headless Chromium, from another origin than the service's (CORS).

Three loopback origins: gunicorn (the service, with ``WEIGHTINIT_CORS_ORIGINS`` = the first page
origin) and two static file servers on other ports, each serving examples/browser as it is:

- From the allowed origin the page fetches a model as safetensors, in each dtype, verifies the file
  (``Repr-Digest``) and every tensor (sha256) with WebCrypto, and its decoded values equal the
  engine's bit for bit (``tests/clients/engine.py``, as for the other clients). The headers it
  shows are the service's (it can read them only because they are exposed), its histogram counts
  what the same binning counts here, and a bad document's 422 is readable (field paths shown).
- From the other origin the same page's ``fetch`` rejects with a TypeError and the page says so;
  the browser's console says its CORS policy blocked the request, and the service did answer the
  preflight (200, in its access log) without CORS headers: the refusal is the browser's.
"""

from __future__ import annotations

import functools
import json
import math
import re
import struct
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from tests.clients.engine import assert_dumped_equal, expected, request
from tests.conftest import start_server, stop_server
from tests.loopback import loopback_server

from .conftest import ARTIFACTS

pytestmark = pytest.mark.slow

PAGE = Path(__file__).resolve().parents[2] / "examples" / "browser"
#: What the page's histogram does (examples/browser/histogram.js).
BINS = 40
#: The response headers the page shows (page.js SHOWN); X-Request-ID differs per request.
SHOWN = ("Content-Length", "ETag", "Repr-Digest", "Content-Disposition", "X-Weightinit-Seed", "X-Weightinit-Scheme",
         "X-Weightinit-Version")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def origins():
    """examples/browser served as it is from two loopback origins (free ports): (allowed, refused)."""
    site = functools.partial(_Quiet, directory=str(PAGE))
    with loopback_server(site) as allowed, loopback_server(site) as refused:
        yield allowed, refused


@pytest.fixture(scope="module")
def service(tmp_path_factory, origins):
    s = start_server(tmp_path_factory.mktemp("cors-gunicorn"),
                     env={"WEIGHTINIT_CORS_ORIGINS": origins[0], "WEIGHTINIT_WORKERS": "1"})
    try:
        yield s
    finally:
        stop_server(s)


def run_page(driver, origin: str, service_url: str, doc: dict | None = None):
    """Open the page on ``origin``, set the service URL (and the document), submit, wait for the
    outcome: the status element (data-state ok or error)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{origin}/index.html?url={quote(service_url, safe='')}")
    status = driver.find_element(By.ID, "status")
    WebDriverWait(driver, 30).until(lambda _: status.get_attribute("data-state") == "idle")  # page.js ran
    if doc is not None:
        driver.execute_script("arguments[0].value = arguments[1]", driver.find_element(By.ID, "doc"), json.dumps(doc))
    driver.find_element(By.ID, "go").click()
    WebDriverWait(driver, 120).until(lambda _: status.get_attribute("data-state") in ("ok", "error"))
    return status


def f64(hex_bits: str) -> float:
    return struct.unpack("<d", int(hex_bits, 16).to_bytes(8, "little"))[0]


def histogram_counts(values: list[float]) -> list[int]:
    """histogram.js's binning, in the same double arithmetic."""
    lo, hi = min(values), max(values)
    counts = [0] * BINS
    for x in values:
        counts[min(math.floor((x - lo) / (hi - lo) * BINS), BINS - 1) if hi > lo else 0] += 1
    return counts


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16", "float64"])
def test_the_page_on_an_allowed_origin_decodes_the_engine_values_bit_exactly(service, origins, browser, dtype):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    d = browser
    doc = request(dtype)
    status = run_page(d, origins[0], service.url, doc)
    assert status.get_attribute("data-state") == "ok", status.text
    assert "Repr-Digest: verified" in status.text and "every tensor's sha256 matches the report" in status.text
    if dtype == "float32":
        ARTIFACTS.mkdir(exist_ok=True)
        d.save_screenshot(str(ARTIFACTS / "browser-example.png"))

    # every decoded value, bit for bit (the dump is filled when its section opens)
    d.find_element(By.CSS_SELECTOR, "#decoded summary").click()
    dump = d.find_element(By.ID, "dump")
    WebDriverWait(d, 60).until(lambda _: dump.get_attribute("value"))
    want = expected(doc)
    assert_dumped_equal(json.loads(dump.get_attribute("value")), want, list(want), f"browser {dtype}")

    # the headers the page read are the service's: readable across origins because they are exposed
    direct = requests.post(service.url + "/v1/weights", json={**doc, "format": "safetensors"}, timeout=60,
                           headers={"Accept": "application/vnd.safetensors", "Origin": origins[0]})
    assert direct.status_code == 200 and direct.headers["Access-Control-Allow-Origin"] == origins[0]
    shown = {dd.get_attribute("data-header"): dd.text for dd in d.find_elements(By.CSS_SELECTOR, "#headers dd")}
    assert {h: shown[h] for h in SHOWN} == {h: direct.headers[h] for h in SHOWN}
    assert re.fullmatch(r"[0-9a-f]{32}", shown["X-Request-ID"]), shown

    # one histogram, of the first tensor: the counts of the same binning of the engine's values
    first = next(iter(want))
    figure = d.find_element(By.ID, "histogram")
    assert figure.get_attribute("data-tensor") == first
    counts = [int(bar.get_attribute("data-count")) for bar in figure.find_elements(By.CSS_SELECTOR, "svg rect.bar")]
    assert counts == histogram_counts([f64(h) for h in want[first]["f64_bits"]])
    assert [tr.get_attribute("data-name") for tr in d.find_elements(By.CSS_SELECTOR, "#tensors tbody tr")] == list(want)

    severe = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe


def test_the_page_reads_a_problem_across_origins(service, origins, browser):
    """A 422 carries the CORS headers too: the page shows its detail and field paths."""
    status = run_page(browser, origins[0], service.url, {**request("float32"), "seed": -1, "dtype": "int8"})
    assert status.get_attribute("data-state") == "error" and status.get_attribute("data-error") == "http"
    assert status.text.startswith("HTTP 422 Invalid request document")
    assert "\nseed: " in status.text and "\ndtype: " in status.text, status.text
    browser.get_log("browser")  # drop the console's line about the 422


def test_a_page_on_another_origin_is_refused_by_the_browser(service, origins, browser):
    refused = origins[1]
    browser.get_log("browser")  # start from an empty console
    before = service.access_log().count('"OPTIONS /v1/weights HTTP/1.1" 200')
    status = run_page(browser, refused, service.url)
    assert status.get_attribute("data-state") == "error", status.text
    assert status.get_attribute("data-error") == "network"
    assert status.text.startswith("TypeError: Failed to fetch"), status.text
    assert refused in status.text and "WEIGHTINIT_CORS_ORIGINS" in status.text
    console = " ".join(e["message"] for e in browser.get_log("browser"))
    assert f"from origin '{refused}' has been blocked by CORS policy" in console, console
    # the service answered the preflight, as it answers anyone, without CORS headers
    assert service.access_log().count('"OPTIONS /v1/weights HTTP/1.1" 200') == before + 1
    r = requests.options(service.url + "/v1/weights", timeout=10, headers={
        "Origin": refused, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
    assert r.status_code == 200 and not any(h.lower().startswith("access-control-") for h in r.headers)
    assert r.headers["Vary"] == "Origin"
