"""The explorer page in real headless Chromium (Debian's chromium + chromium-driver, driven by
selenium), loaded from the running gunicorn server (the session ``server`` fixture).

It runs a two-scheme comparison from the controls (keyboard submit), then checks that the plots
rendered and that every plotted number is exactly what ``POST /v1/diagnose`` returns for the
request the page's curl command shows; a download goes through ``/v1/weights``; no console
error (a Content-Security-Policy violation would be one). The screenshot is saved under
``test-artifacts/`` (gitignored).
"""

from __future__ import annotations

import json
import re

import pytest
import requests

from .conftest import ARTIFACTS

pytestmark = pytest.mark.slow


def wait_runs(driver, n, timeout=120):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(
        lambda d: d.find_element(By.ID, "results").get_attribute("data-runs") == str(n)
        or d.find_element(By.ID, "error").is_displayed())
    error = driver.find_element(By.ID, "error")
    assert not error.is_displayed(), error.text
    return driver.find_element(By.ID, "results")


def curl_body(text: str) -> dict:
    """The JSON document of a curl command as the page prints it (-d '...')."""
    m = re.search(r"-d '((?:[^']|'\\'')*)'", text)
    assert m, text
    return json.loads(m.group(1).replace("'\\''", "'"))


def pick(obj, path):
    for key in path.split("."):
        obj = obj[key]
    return obj


def plotted(driver, plot_id):
    """{(series, layer): value} of the markers of one chart, as the page drew them."""
    from selenium.webdriver.common.by import By

    out = {}
    for mk in driver.find_elements(By.CSS_SELECTOR, f"#{plot_id} svg .pt"):
        out[(int(mk.get_attribute("data-series")), mk.get_attribute("data-layer"))] = float(mk.get_attribute("data-value"))
    return out


def test_explorer_compares_two_schemes_and_shows_the_apis_numbers(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    d = browser
    page = requests.get(server.url + "/", timeout=10)
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in page.text and "http://" not in page.text.replace(server.url, "")  # no inline JS, no CDN

    d.get(server.url + "/")
    wait_runs(d, 1)                                 # the page runs its default comparison on load

    # A comparison of two schemes on the deep ReLU MLP, seed 3, submitted with the keyboard.
    Select(d.find_element(By.ID, "preset")).select_by_value("relu")
    for box in d.find_elements(By.CSS_SELECTOR, "#scheme-list input"):
        if box.is_selected() != (box.get_attribute("value") in ("he_normal", "xavier_normal")):
            box.click()
    seed = d.find_element(By.ID, "seed")
    seed.clear()
    seed.send_keys("3")
    batch = d.find_element(By.ID, "batch")
    batch.clear()
    batch.send_keys("64")
    batch.send_keys(Keys.ENTER)                     # Enter in a field submits the form
    wait_runs(d, 2)

    request_doc = curl_body(d.find_element(By.ID, "curl-diagnose").text)
    assert request_doc["seed"] == 3 and request_doc["batch"] == 64
    assert request_doc["schemes"] == ["xavier_normal", "he_normal"]
    api = requests.post(server.url + "/v1/diagnose", json=request_doc, timeout=120)
    assert api.status_code == 200
    api = api.json()
    results = api["results"]
    names = [lay["name"] for lay in results[0]["layers"]]
    assert len(names) == 20

    # verdicts, in words, in request order
    cards = d.find_elements(By.CSS_SELECTOR, "#verdicts .verdict")
    assert [c.get_attribute("data-verdict") for c in cards] == [r["verdict"] for r in results] == ["vanishing", "healthy"]
    for card, r in zip(cards, results):
        assert card.find_element(By.CSS_SELECTOR, "[data-role=verdict]").text.lower() == r["verdict"]
        assert card.find_element(By.CSS_SELECTOR, ".explanation").text == r["explanation"]

    # both charts rendered: one line per scheme, every marker equal to the API's number
    for plot_id, metric in (("plot-forward", "activation.std"), ("plot-backward", "pre_activation_gradient_norm")):
        assert d.find_element(By.ID, plot_id).get_attribute("data-metric") == metric
        lines = d.find_elements(By.CSS_SELECTOR, f"#{plot_id} svg path.line")
        assert len(lines) == 2 and all(len(p.get_attribute("d")) > 100 for p in lines)
        points = plotted(d, plot_id)
        expected = {(i, lay["name"]): pick(lay, metric) for i, r in enumerate(results) for lay in r["layers"]}
        assert points == expected
    # the log axis spans the vanishing scheme's decades
    ticks = [t.text for t in d.find_elements(By.CSS_SELECTOR, "#plot-forward svg .grid text")]
    assert len(ticks) >= 3

    # legends name the schemes
    legend = d.find_element(By.ID, "legend-forward").text
    assert "He normal" in legend and "Xavier normal" in legend

    # switching the gradient metric redraws with the weight-gradient norms
    Select(d.find_element(By.ID, "bwd-metric")).select_by_value("weight_gradient_norm")
    points = plotted(d, "plot-backward")
    assert points == {(i, lay["name"]): lay["weight_gradient_norm"] for i, r in enumerate(results) for lay in r["layers"]}

    # per-layer weight histograms of the first scheme: counts and density curve drawn
    cells = d.find_elements(By.CSS_SELECTOR, "#hist-grid .hcell")
    assert len(cells) == 20
    for cell, lay in zip(cells, results[0]["layers"]):
        bars = cell.find_elements(By.CSS_SELECTOR, "svg .bars rect")
        assert sum(int(b.get_attribute("data-count")) for b in bars) == sum(lay["weight"]["histogram"]["counts"])
        assert cell.find_elements(By.CSS_SELECTOR, "svg path.density")
        assert lay["weight"]["name"] in cell.text

    # a download goes through /v1/weights: the same bytes as asking for them directly
    d.find_element(By.CSS_SELECTOR, "button.dl[data-format=npz]").click()
    from selenium.webdriver.support.ui import WebDriverWait
    WebDriverWait(d, 60).until(lambda dr: dr.find_element(By.ID, "dl-status").get_attribute("data-bytes"))
    weights_doc = curl_body(d.find_element(By.ID, "curl-weights").text)
    assert weights_doc["format"] == "npz" and weights_doc["scheme"] == "xavier_normal" and weights_doc["seed"] == 3
    direct = requests.post(server.url + "/v1/weights", json=weights_doc, timeout=120)
    assert direct.status_code == 200
    assert int(d.find_element(By.ID, "dl-status").get_attribute("data-bytes")) == len(direct.content)

    # no console errors (a CSP violation or a script error would be one)
    severe = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe

    ARTIFACTS.mkdir(exist_ok=True)
    Select(d.find_element(By.ID, "bwd-metric")).select_by_value("pre_activation_gradient_norm")
    d.execute_script("document.activeElement.blur(); window.scrollTo(0, 0); "
                     "document.getElementById('controls').scrollTop = 0;")
    d.save_screenshot(str(ARTIFACTS / "explorer.png"))
    height = d.execute_script("return document.documentElement.scrollHeight")
    d.set_window_size(1440, min(height, 4000))
    d.save_screenshot(str(ARTIFACTS / "explorer-full.png"))
    d.set_window_size(1440, 900)
    assert (ARTIFACTS / "explorer.png").stat().st_size > 20_000


def test_explorer_reports_a_bad_document_in_words(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    d = browser
    d.get(server.url + "/")
    wait_runs(d, 1)
    arch = d.find_element(By.ID, "arch")
    arch.clear()
    arch.send_keys('{"layers": [{"type": "dense", "in_features": 4, "out_features": 3, "activation": "softmax"},'
                   ' {"type": "dense", "in_features": 3, "out_features": 2}]}')
    d.find_element(By.ID, "run").click()
    WebDriverWait(d, 60).until(lambda dr: dr.find_element(By.ID, "error").is_displayed())
    text = d.find_element(By.ID, "error").text
    assert "architecture.layers.0.activation" in text and "last layer" in text


def test_explorer_shows_the_residual_stream_preset(server, browser):
    """The 48-block pre-LN preset: its note says what to look for, only the registry's recipes are offered,
    and the stream plot shows the API's numbers (batch 2 and two schemes: kept cheap)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from service.core import schemes

    d = browser
    d.get_log("browser")                          # drop what earlier tests logged (their 422 is on purpose)
    d.get(server.url + "/")
    wait_runs(d, 1)
    Select(d.find_element(By.ID, "preset")).select_by_value("stream")
    assert "grows like the square root of the depth" in d.find_element(By.ID, "preset-note").text

    def offered(dr):
        return {b.get_attribute("value") for b in dr.find_elements(By.CSS_SELECTOR, "#scheme-list input") if b.is_displayed()}

    # deepnorm and fixup (branch i15-mup) are offered once the registry has them
    later = {"deepnorm", "fixup"}
    WebDriverWait(d, 30).until(lambda dr: offered(dr) & later == later & set(schemes.SCHEMES))
    for box in d.find_elements(By.CSS_SELECTOR, "#scheme-list input"):
        if box.is_displayed() and box.is_selected() != (box.get_attribute("value") in ("auto", "gpt2")):
            box.click()
    batch = d.find_element(By.ID, "batch")
    batch.clear()
    batch.send_keys("2")
    d.find_element(By.ID, "run").click()
    wait_runs(d, 2)

    request_doc = curl_body(d.find_element(By.ID, "curl-diagnose").text)
    assert len(request_doc["residual"]) == 96 and (request_doc["tokens"], request_doc["heads"]) == (8, 4)
    api = requests.post(server.url + "/v1/diagnose", json=request_doc, timeout=300)
    assert api.status_code == 200
    results = api.json()["results"]
    cards = d.find_elements(By.CSS_SELECTOR, "#verdicts .verdict")
    assert [c.get_attribute("data-verdict") for c in cards] == [r["verdict"] for r in results] == ["growing", "healthy"]
    for card, r in zip(cards, results):
        assert card.find_element(By.CSS_SELECTOR, ".explanation").text == r["explanation"]
    assert d.find_element(By.ID, "plot-forward").get_attribute("data-metric") == "stream.ratio"
    assert plotted(d, "plot-forward") == {(i, b["last_layer"]): b["ratio"] for i, r in enumerate(results)
                                          for b in r["stream"]}
    severe = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe
