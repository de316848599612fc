"""The live monitor in Chromium against a real ASGI server: charlie watches while alice and bob stream, sees a tile
for each with attention, alert and thumbnail, and sends alice a message that reaches her proctoring socket only.

daphne runs in a subprocess (pytest-django's live_server serves no WebSockets) on its own SQLite file, with the
in-process pool and the scripted wiring analyzer (tests/proctoring/fakes.py: a frame's colour says what it shows),
so this tests the monitor's wiring and page, not vision. The students' sockets are opened by a few lines of JS in
their own signed-in browser contexts, sending JPEG frames the way the panel does. Screenshot:
test-artifacts/review/monitor.png.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser import assert_accessible, launch, require_browser, sign_in, wait_for_port
from tests.proctoring.fakes import frame

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "review"
PORT = int(os.getenv("REVIEW_MONITOR_PORT", "8107"))

STREAM_JS = """
([attemptId, frameB64]) => new Promise((resolve, reject) => {
  const bytes = Uint8Array.from(atob(frameB64), c => c.charCodeAt(0));
  window.events = [];
  const ws = new WebSocket(`ws://${location.host}/ws/proctor/${attemptId}/`);
  window.proctorSocket = ws;
  ws.onmessage = (m) => {
    const e = JSON.parse(m.data);
    window.events.push(e);
    if (e.event === "READY") { ws.send(bytes); resolve(e); }
  };
  ws.onclose = (e) => reject(new Error(`closed ${e.code}`));
})
"""

# Send n more frames on the socket STREAM_JS opened, each after the previous one's result (as the exam page does).
MORE_FRAMES_JS = """
([frameB64, n]) => new Promise((resolve) => {
  const bytes = Uint8Array.from(atob(frameB64), c => c.charCodeAt(0));
  const ws = window.proctorSocket;
  let left = n - 1;
  ws.addEventListener("message", (m) => {
    const e = JSON.parse(m.data);
    if (e.event !== "ATTENTION_UPDATE") return;
    if (left > 0) { left -= 1; ws.send(bytes); } else { resolve(); }
  });
  ws.send(bytes);
})
"""


@pytest.fixture
def server(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "PYTEST_CURRENT_TEST")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "examsite.settings",
            "DEBUG": "true",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'monitor.sqlite3'}",
            "INFERENCE_POOL": "local",
            "INFERENCE_WORKERS": "1",
            "INFERENCE_ANALYZER": "tests.proctoring.fakes:scripted_analyzer",
            "PRIVATE_STORAGE_DIR": str(tmp_path / "private"),
        }
    )
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    seeded = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", "from tests.review.monitor_seed import main; main()"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    seed = json.loads(seeded.stdout.strip().splitlines()[-1])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "monitor-daphne.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(PORT), "examsite.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(PORT, proc, log)
        yield f"http://127.0.0.1:{PORT}", seed
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.mark.browser
def test_charlie_sees_two_streaming_students_and_his_message_reaches_alice(server):
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    url, seed = server
    alice_id, bob_id = seed["attempts"]["alice"], seed["attempts"]["bob"]
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            charlie = sign_in(browser, url, "charlie", seed["password"], width=1100, height=800)
            charlie.on("pageerror", lambda error: errors.append(str(error)))
            told: list[str] = []  # what the page tells its monitor socket
            charlie.on("websocket", lambda ws: ws.on("framesent", lambda text: told.append(text)))
            charlie.goto(f"{url}/review/exams/{seed['exam']}/monitor/")
            expect(charlie.locator("#monitor-connection")).to_have_text("Live: connected.")
            # The roster: both students are there before they stream, setting up, and the header counts them.
            tiles = charlie.locator("#monitor-tiles > li")
            expect(tiles).to_have_count(2)
            expect(charlie.locator(f"#tile-{seed['students']['alice']}")).to_contain_text("◌ Setting up")
            expect(charlie.locator("#monitor-counts")).to_have_text(
                "2 students: 2 setting up · 0 open flags · 0 need attention"
            )
            expect(charlie.locator("#monitor-empty")).to_be_hidden()

            alice = sign_in(browser, url, "alice", seed["password"], width=1100, height=800)
            bob = sign_in(browser, url, "bob", seed["password"], width=1100, height=800)
            alice.evaluate(STREAM_JS, [alice_id, base64.b64encode(frame("alice")).decode()])
            bob.evaluate(STREAM_JS, [bob_id, base64.b64encode(frame("phone")).decode()])

            expect(tiles).to_have_count(2)
            alice_tile = charlie.locator(f"#tile-{seed['students']['alice']}")
            bob_tile = charlie.locator(f"#tile-{seed['students']['bob']}")
            expect(alice_tile.locator("h2")).to_have_text("Alice Adams")
            expect(alice_tile).to_contain_text("● Connected")
            # The first result waits for the local pool's worker process to start (spawn, Django set-up), which
            # takes several seconds on a loaded 2-core machine; later results arrive within a frame interval.
            expect(alice_tile).to_contain_text("(Focused)", timeout=60_000)
            expect(bob_tile).to_contain_text("Phone in view", timeout=30_000)
            expect(bob_tile).to_contain_text("(Away)")
            expect(alice_tile.locator("img.thumb")).to_be_visible()
            # The page asks for the thumbnails of the tiles on screen: here both.
            shown = [json.loads(text) for text in told if '"visible"' in text]
            assert shown and sorted(shown[-1]["attempt_ids"]) == sorted([alice_id, bob_id]), told
            expect(charlie.locator("#monitor-announcer")).to_contain_text("Bob Brown: Phone in view")
            expect(bob_tile.locator(".tile-alert")).to_have_text(re.compile(r"Phone in view at \d\d:\d\d:\d\d$"))
            # What bob's camera shows now, and his open flag with its link into review, once k of n frames agree.
            expect(bob_tile.locator(".tile-conditions")).to_have_text("Now: Phone in view")
            expect(alice_tile.locator(".tile-conditions")).to_have_text("Now: nothing to note")
            bob.evaluate(MORE_FRAMES_JS, [base64.b64encode(frame("phone")).decode(), 4])
            flag_link = bob_tile.locator(".tile-flags a")
            expect(flag_link).to_contain_text("Open flag: Phone in view", timeout=30_000)
            assert f"/review/attempts/{bob_id}/#flag-" in flag_link.get_attribute("href")
            expect(charlie.locator("#monitor-counts")).to_contain_text("1 open flag")
            assert_accessible(charlie, "the live monitor")
            # Filters and order: only bob has an open flag; by review priority he comes first.
            charlie.get_by_role("radio", name="Open flags").check()
            expect(bob_tile).to_be_visible()
            expect(alice_tile).to_be_hidden()
            charlie.get_by_role("radio", name="Everyone").check()
            charlie.get_by_label("Order").select_option("priority")
            expect(tiles.first).to_have_id(f"tile-{seed['students']['bob']}")
            for width in (1280, 1024):
                charlie.set_viewport_size({"width": width, "height": 900})
                box = flag_link.bounding_box()
                assert box is not None and box["x"] + box["width"] <= width, (width, box)
                charlie.screenshot(path=str(ARTIFACTS / f"monitor-{width}.png"), full_page=True)

            alice_tile.locator("summary").click()  # the message form folds out
            alice_tile.get_by_label("Message to Alice Adams").fill("Please keep your face in view.")
            alice_tile.get_by_role("button", name="Send").click()
            expect(alice_tile.locator(".tile-sent")).to_have_text("Sent: “Please keep your face in view.”")
            alice.wait_for_function(
                "() => window.events.some(e => e.event === 'INSTRUCTOR_MESSAGE'"
                " && e.message === 'Please keep your face in view.')"
            )
            charlie.screenshot(path=str(ARTIFACTS / "monitor.png"), full_page=True)
            assert not bob.evaluate("window.events.some(e => e.event === 'INSTRUCTOR_MESSAGE')")

            # alice leaves: her tile says so in words.
            alice.evaluate("window.proctorSocket.close()")
            expect(alice_tile).to_contain_text("○ Disconnected")
        finally:
            browser.close()
    assert errors == []
