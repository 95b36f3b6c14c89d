"""/docs (Swagger UI) in real headless Chromium, against the running gunicorn server.

For every operation: "Try it out" -> "Execute" with its default example, and the answer is rendered
within a bounded wait, highlighted only when short. The version badge is the service's. The
requests the page sends carry no X-Request-ID or If-None-Match unless typed. A 2.4 MB JSON answer, and the spec documents themselves,
are shown cut without locking up the page; a binary answer is a download link.

Every wait has a generous timeout: nothing here measures speed. A page that locked up would time out.
"""

from __future__ import annotations

import re

import pytest
import requests
import yaml

from .conftest import ROOT, console_errors, screenshot, sent_requests

pytestmark = pytest.mark.slow

#: Generous: an answer is rendered well within it unless the page locks up.
RENDER_WAIT = 60
#: Texts up to this many characters are highlighted, longer ones are plain (its owner: init.js).
HIGHLIGHT_MAX = int(re.search(r"var HIGHLIGHT_MAX = (\d+);",
                              (ROOT / "service" / "static" / "docs" / "init.js").read_text()).group(1))


def spec() -> dict:
    return yaml.safe_load((ROOT / "openapi.yaml").read_text())


def operation_ids() -> list[tuple[str, str, str]]:
    """(tag, operationId, path) of every operation, in document order."""
    return [(op["tags"][0], op["operationId"], path) for path, item in spec()["paths"].items() for op in item.values()]


def answers_json(operation_id: str) -> bool:
    """Whether the operation's 200 answer (its first media type: what the page asks for) is JSON."""
    ops = [op for item in spec()["paths"].values() for op in item.values() if op["operationId"] == operation_id]
    return next(iter(ops[0]["responses"]["200"].get("content", {})), None) == "application/json"


@pytest.fixture(scope="module")
def docs(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server.url + "/docs")
    WebDriverWait(browser, RENDER_WAIT).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) == len(operation_ids()))
    sent_requests(browser, server.url)          # start the network log from here
    console_errors(browser)
    return browser


def opblock(d, tag, operation_id):
    from selenium.webdriver.common.by import By

    return d.find_element(By.ID, f"operations-{tag}-{operation_id}")


def expand(d, tag, operation_id):
    """Open an operation and press "Try it out": its element."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    op = opblock(d, tag, operation_id)
    if "is-open" not in op.get_attribute("class"):
        op.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    WebDriverWait(d, RENDER_WAIT).until(lambda _: op.find_elements(By.CSS_SELECTOR, ".opblock-body"))
    tries = op.find_elements(By.CSS_SELECTOR, "button.try-out__btn")
    if tries and tries[0].text.strip() == "Try it out":
        d.execute_script("arguments[0].scrollIntoView({block: 'center'})", tries[0])
        tries[0].click()
    return op


def execute(d, op) -> tuple[str, object]:
    """Press Execute and wait for the answer: (status, the rendered body element)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    for old in op.find_elements(By.CSS_SELECTOR, "button.btn-clear"):
        old.click()
    button = op.find_element(By.CSS_SELECTOR, "button.execute")
    d.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    status = WebDriverWait(d, RENDER_WAIT).until(lambda _: [
        e for e in op.find_elements(By.CSS_SELECTOR, ".live-responses-table .response .response-col_status")
        if e.text.strip()])
    body = WebDriverWait(d, RENDER_WAIT).until(lambda _: [
        e for e in op.find_elements(By.CSS_SELECTOR, ".live-responses-table .response-col_description > div")
        if e.text.strip()])
    return status[0].text.strip().split()[0], body[0]


def collapse(d, op):
    from selenium.webdriver.common.by import By

    if "is-open" in op.get_attribute("class"):
        control = op.find_element(By.CSS_SELECTOR, ".opblock-summary-control")
        d.execute_script("arguments[0].scrollIntoView({block: 'center'})", control)
        control.click()


def test_the_version_badge_is_the_services(server, docs):
    from selenium.webdriver.common.by import By

    version = requests.get(server.url + "/healthz", timeout=10).json()["version"]
    badges = [e.text.strip() for e in docs.find_elements(By.CSS_SELECTOR, ".info .title .version")]
    assert badges[0] == version and "OAS 3.1" in badges
    assert docs.title == f"weightinit API {version}"


@pytest.mark.parametrize("tag, operation_id, path", operation_ids(), ids=[o[1] for o in operation_ids()])
def test_every_operation_runs_its_default_example(server, docs, tag, operation_id, path):
    from selenium.webdriver.common.by import By

    d = docs
    op = expand(d, tag, operation_id)
    for name in ("X-Request-ID", "If-None-Match", "Range", "If-Range"):   # nothing pre-filled
        for field in op.find_elements(By.CSS_SELECTOR, f'tr[data-param-name="{name}"] input'):
            assert field.get_attribute("value") == "", (operation_id, name)
    status, body = execute(d, op)
    assert status.startswith("2"), (operation_id, status, body.text[:300])
    # a browser's own CORS preflights are not the operation's request, unless the operation is one
    sent = [r for r in sent_requests(d, server.url) if r[0] != "OPTIONS" or operation_id.endswith("Preflight")]
    assert sent, operation_id
    for method, url, headers in sent:
        assert "x-request-id" not in headers and "if-none-match" not in headers, (url, headers)
    if path in ("/openapi.yaml", "/openapi.json") and not operation_id.endswith("Preflight"):  # over 100 KB: cut
        assert "are shown as they came" in body.text
    else:
        assert not body.find_elements(By.CSS_SELECTOR, ".weightinit-cut")
    if answers_json(operation_id) and path not in ("/openapi.json",):   # highlighted only when small
        shown = body.find_element(By.CSS_SELECTOR, "pre").get_attribute("textContent")
        assert bool(body.find_elements(By.CSS_SELECTOR, "pre span")) == (len(shown) <= HIGHLIGHT_MAX), len(shown)
    collapse(d, op)
    assert not console_errors(d)


def test_a_typed_request_id_is_sent(server, docs):
    from selenium.webdriver.common.by import By

    d = docs
    op = expand(d, "meta", "health")
    field = op.find_element(By.CSS_SELECTOR, 'tr[data-param-name="X-Request-ID"] input')
    field.clear()
    field.send_keys("typed-by-hand-1")
    status, _ = execute(d, op)
    assert status == "200"
    sent = [h for m, url, h in sent_requests(d, server.url) if url.endswith("/healthz")]
    assert sent and sent[-1].get("x-request-id") == "typed-by-hand-1"
    field.clear()
    collapse(d, op)


def execute_weights_example(d, name):
    """Run ``POST /v1/weights`` with the request example ``name``: (its element, the rendered body)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    op = expand(d, "weights", "generateWeights")
    select = op.find_element(By.CSS_SELECTOR, ".opblock-section-request-body select.examples-select-element")
    Select(select).select_by_value(name)
    status, body = execute(d, op)
    assert status == "200", (name, body.text[:300])
    return op, body


def test_a_large_json_answer_is_shown_cut_and_the_page_stays_responsive(server, docs):
    from selenium.webdriver.common.by import By

    d = docs
    op, body = execute_weights_example(d, "readme_fc1")
    note = body.find_element(By.CSS_SELECTOR, ".weightinit-cut p")
    whole = requests.post(server.url + "/v1/weights", json=spec()["paths"]["/v1/weights"]["post"]["requestBody"][
        "content"]["application/json"]["examples"]["readme_fc1"]["value"], timeout=60)
    assert len(whole.content) > 2_000_000
    assert f"{len(whole.text):,} characters" in note.text
    assert note.find_element(By.CSS_SELECTOR, "a[download]").get_attribute("href").startswith("blob:")
    shown = body.find_element(By.CSS_SELECTOR, "pre").get_attribute("textContent")
    assert 90_000 < len(shown) < 110_000 and whole.text.startswith(shown[:1000])
    # the page still answers: a script runs
    assert d.execute_script("return document.querySelectorAll('.opblock').length") == len(operation_ids())
    d.execute_script("arguments[0].scrollIntoView({block: 'start'})", note)
    screenshot(d, "docs-large-answer")
    collapse(d, op)
    assert not console_errors(d)


def test_a_binary_answer_is_a_download_link(server, docs):
    from selenium.webdriver.common.by import By

    d = docs
    op, body = execute_weights_example(d, "keras_safetensors")
    link = body.find_element(By.CSS_SELECTOR, "a[download]")
    assert link.text == "Download file" and link.get_attribute("download").endswith(".safetensors")
    sent = [h for m, url, h in sent_requests(d, server.url) if url.endswith("/v1/weights")]
    assert sent[-1]["accept"] == "*/*"   # the body's format decides, not the page's media-type list
    collapse(d, op)
    assert not console_errors(d)
