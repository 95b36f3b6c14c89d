"""Real headless Chromium (Debian's chromium + chromium-driver, driven by selenium) for the pages the
service serves, loaded from the running gunicorn server (the session ``server`` fixture).

The browser keeps its console log (``console_errors``) and its network log (``sent_requests``: the
headers the page set on every request it sent). Screenshots go under ``test-artifacts/`` (gitignored).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         "--window-size=1440,900"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("chromium / chromium-driver not installed (scripts/test-deps.sh installs them)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver) -> list:
    """The console's errors since the last call (a Content-Security-Policy violation is one)."""
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def sent_requests(driver, origin: str) -> list[tuple[str, str, dict]]:
    """(method, url, headers with lower-case names) of every request to ``origin`` since the last call:
    the headers the page set (not the validators the browser's own cache adds to a revalidation)."""
    sent = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent" and msg["params"]["request"]["url"].startswith(origin):
            req = msg["params"]["request"]
            sent.append((req["method"], req["url"], {k.lower(): v for k, v in req["headers"].items()}))
    return sent


def screenshot(driver, name: str, width: int = 1440, full: bool = False) -> Path:
    """Save the viewport (or, with ``full``, the whole page up to 6000 px) as test-artifacts/<name>.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    if full:
        size = driver.get_window_size()
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, min(height + 120, 6000))
        driver.save_screenshot(str(path))
        driver.set_window_size(size["width"], size["height"])
    else:
        driver.save_screenshot(str(path))
    return path
