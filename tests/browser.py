"""What every real-browser test shares: Debian's Chromium, its flags, and a daphne subprocess's port.

Chromium comes from Debian (`apt-get install chromium`), never from `playwright install`. The flags keep it off the
network (this machine reaches only package registries) and headless as root.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from tests.conftest import service_missing

CHROMIUM = os.getenv("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# A fake camera that needs no permission prompt; add --use-file-for-fake-video-capture=clip.y4m to feed a clip.
FAKE_CAMERA_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


def require_browser() -> None:
    """Skip (or fail under REQUIRE_SERVICES) unless Chromium and the playwright package are both here."""
    if not Path(CHROMIUM).exists():
        service_missing(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        service_missing("playwright (the Python package) is not installed")


def launch(playwright, *extra_args: str):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *extra_args])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    """Wait until the server subprocess listens; fail with the tail of its log if it exits or never listens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"daphne exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"daphne did not listen on {port} within {timeout} s:\n{log.read_text()[-3000:]}")


AXE_JS = Path(__file__).resolve().parent.parent / "var" / "node" / "node_modules" / "axe-core" / "axe.min.js"
# What fails a page: axe-core's two highest impacts. Moderate and minor findings are reported, not failed on.
AXE_FAILING = ("critical", "serious")


def assert_accessible(page, name: str) -> None:
    """Run axe-core (from npm, `make axe`) on the page as it is now; fail on any critical or serious finding, naming
    the rule, its help text and the first offending elements."""
    if not AXE_JS.exists():
        service_missing(f"axe-core is not installed at {AXE_JS} (make axe)")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated through DevTools rather than added as a <script>: the pages' Content-Security-Policy (script-src
        # 'self') rightly refuses an inline script, and a test must not loosen it.
        page.evaluate(AXE_JS.read_text() + "\n;undefined")
    violations = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations.map(v => ({id: v.id, "
        "impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"
    )
    failing = [v for v in violations if v["impact"] in AXE_FAILING]
    assert not failing, f"axe on {name}: " + "; ".join(
        f"{v['impact']} {v['id']} ({v['help']}) at {', '.join(v['nodes'])}" for v in failing
    )


def sign_in(browser, url: str, username: str, password: str, *, width: int = 1280, height: int = 900):
    """A page in a context of its own (its own cookies), signed in as `username` through the real login form."""
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{url}/")
    return page
