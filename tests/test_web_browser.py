"""The web dashboard in a real browser: Debian's chromium driven by Playwright (no browser
download), against a real `cockpit --no-ui` child on TCP. It logs in, sees a fill arrive
without a reload, halts through the confirm dialog (then `cockpit status --json` says HALTED
and the audit names web:<token name>), is refused without a login or a CSRF token, and takes a
screenshot of every page at a laptop and a phone width (also copied to /tmp/cockpit-web-shots/)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import CONFIG, ROOT
from tests.test_control_cli import cli, ok, status, wait_until
from tests.test_hostile_api import _free_port

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium: install Debian's chromium "
                                "(apt-get install chromium) to run the browser tests")
TOKEN = "t0ken-for-browser-tests-42"
PAGES = ("overview", "positions", "orders", "fills", "alerts", "metrics", "reports")
SIZES = {"laptop": (1280, 800), "phone": (390, 844)}
# The screenshots stay in the test's tmp_path; set COCKPIT_TEST_SHOTS to a folder to keep a copy.
SHARED_SHOTS = Path(os.environ["COCKPIT_TEST_SHOTS"]) if os.environ.get("COCKPIT_TEST_SHOTS") else None


@pytest.fixture
def engine(clean_env: dict[str, str], tmp_path: Path):
    port = _free_port()
    state = tmp_path / "state"
    env = {**clean_env, "COCKPIT_API__TCP_PORT": str(port), "COCKPIT_API_TOKEN": TOKEN,
           "COCKPIT_API__TOKEN_NAME": "nightly", "COCKPIT_DEADMAN__INTERVAL_SECONDS": "3600"}
    proc = subprocess.Popen([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(CONFIG), "--state-dir",
                             str(state), "--speed", "400000"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    wait_until(lambda: (state / "control.sock").exists() or proc.poll() is not None)
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    yield env, state, f"http://127.0.0.1:{port}", proc
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=60)


def test_the_dashboard_in_a_browser(engine, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    env, state, url, proc = engine
    # without a login: the pages redirect to it, the JSON API wants the bearer token
    assert httpx.get(f"{url}/").status_code == 303 and httpx.get(f"{url}/").headers["location"] == "/login"
    assert httpx.get(f"{url}/status").status_code == 401
    shots = tmp_path / "shots"
    shots.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM),
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            laptop = browser.new_context(viewport={"width": 1280, "height": 800})
            page = laptop.new_page()
            page.goto(f"{url}/")
            expect(page).to_have_url(f"{url}/login")
            page.screenshot(path=shots / "login-laptop.png")
            page.fill("#token", TOKEN)
            page.click("button[type=submit]")
            expect(page).to_have_url(f"{url}/web/overview")
            expect(page.locator("#conn")).to_have_text("live", timeout=10_000)

            # a new fill appears without a reload (the marker would be gone after one)
            page.goto(f"{url}/web/fills")
            expect(page.locator("#conn")).to_have_text("live", timeout=10_000)
            page.evaluate("window.__noReload = true")
            first = page.locator("tr[data-exec]").first
            before = first.get_attribute("data-exec") if page.locator("tr[data-exec]").count() else None
            page.wait_for_function("(old) => { const r = document.querySelector('tr[data-exec]');"
                                   " return r && r.dataset.exec !== old; }", arg=before, timeout=60_000)
            assert page.evaluate("window.__noReload") is True

            # every page at both widths
            phone = browser.new_context(viewport={"width": 390, "height": 844}, storage_state=laptop.storage_state())
            for size, context in (("laptop", laptop), ("phone", phone)):
                tab = context.new_page()
                for name in PAGES:
                    tab.goto(f"{url}/web/{name}")
                    expect(tab.locator(f'main[data-page="{name}"]')).to_be_visible()
                    tab.screenshot(path=shots / f"{name}-{size}.png", full_page=True)
                tab.close()

            # a CSRF-less action is refused, with the session's cookie and this very origin
            refused = laptop.request.post(f"{url}/web/actions/halt", form={"plan": "0" * 16},
                                          headers={"Origin": url})
            assert refused.status == 403 and "CSRF" in refused.text()
            assert status(env, state)["trading_state"] == "ACTIVE"

            # halt from the page, through the confirm dialog that shows the plan
            page.goto(f"{url}/web/overview")
            page.click("button[data-action=halt]")
            dialog = page.locator("dialog.confirm")
            expect(dialog).to_be_visible()
            expect(dialog.locator("pre.plan")).to_contain_text("HALT trading")
            dialog.screenshot(path=shots / "confirm-halt-laptop.png")
            page.click("#confirm-button")
            expect(page).to_have_url(f"{url}/web/overview")
            expect(page.locator("[data-field=trading_state]")).to_have_text("HALTED")
            page.screenshot(path=shots / "overview-halted-laptop.png", full_page=True)
        finally:
            browser.close()
    assert status(env, state)["trading_state"] == "HALTED"
    if SHARED_SHOTS is not None:
        SHARED_SHOTS.mkdir(parents=True, exist_ok=True)
        for shot in shots.iterdir():
            shutil.copy(shot, SHARED_SHOTS / shot.name)
    proc.terminate()
    assert proc.wait(timeout=60) == 0
    halts = [json.loads(x) for x in ok(cli(env, state, "audit", "export")).splitlines() if '"operator.halt"' in x]
    assert [h["actor"] for h in halts] == ["web:nightly"]
