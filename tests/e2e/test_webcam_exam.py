"""A real browser sits a proctored exam with a fake webcam, against a real ASGI server.

Chromium's fake capture device plays a Y4M clip built from real photos (tests/e2e/clip.py). Each phase launches its
own browser with its own clip, carrying the signed-in session over, because Chromium loops one file per process and
one clip per phase keeps every phase independent of timing. The scripted exam:

0. consent, and enrolment guidance in an empty room;
1. face enrolment (the astronaut), the system check, then the exam page: AUTHORIZED;
2. another person (Grace Hopper): IDENTITY_MISMATCH;
3. two faces (Zidane and Ancelotti): MULTIPLE_FACES;
4. nobody: FACE_NOT_FOUND;
5. a phone (face-api's sample2 crop): PHONE_DETECTED, then answer and submit.

The server is daphne in a subprocess (pytest-django's live_server is WSGI and serves no WebSockets) on its own
database: a file SQLite database, or a fresh PostgreSQL database next to DATABASE_URL's when that is set.
Screenshots go to test-artifacts/e2e/.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from tests.browser import CHROMIUM, FAKE_CAMERA_ARGS, assert_accessible, free_port, require_browser, wait_for_port
from tests.browser import CHROMIUM_ARGS as BROWSER_ARGS
from tests.conftest import service_missing
from tests.e2e import clip
from tests.servers import admin_sql, postgres_database

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(settings.BASE_DIR)
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
CHROMIUM_ARGS = [*BROWSER_ARGS, *FAKE_CAMERA_ARGS]
# The first frame loads the models in the server's worker process; later phases answer within a second or two.
FIRST_EVENT_TIMEOUT_MS = 60_000
EVENT_TIMEOUT_MS = 30_000


@dataclass
class Server:
    url: str
    env: dict[str, str]
    seed: dict
    log: Path

    def scenario(self, *args: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-m", "tests.e2e.scenario", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    require_browser()
    from proctoring.vision.packs import ModelPackError, require_pack

    try:
        require_pack(settings.MODEL_PACK)
    except ModelPackError as exc:
        service_missing(f"the model pack is not installed: {exc}")
    evalset = Path(settings.DATA_DIR) / "evalset"
    missing = [s.file for s in clip.PHASES.values() if s is not None and not (evalset / s.file).exists()]
    if missing:
        service_missing(f"evaluation photos missing from {evalset}: {missing} (run `python bench/evalset.py fetch`)")

    work = tmp_path_factory.mktemp("e2e")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "INFERENCE_POOL", "PYTEST_CURRENT_TEST")
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": os.getenv("E2E_SETTINGS_MODULE", "examsite.settings"),
            "DEBUG": "true",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "INFERENCE_POOL": "local",
            "INFERENCE_WORKERS": "1",
            "DATA_DIR": str(settings.DATA_DIR),
            "MODEL_DIR": str(settings.MODEL_DIR),
            "PRIVATE_STORAGE_DIR": str(work / "private"),
            "LOG_LEVEL": "INFO",
        }
    )
    pg_url = os.getenv("DATABASE_URL", "")
    pg_name = None
    if pg_url.startswith(("postgres://", "postgresql://")):
        pg_name, env["DATABASE_URL"] = postgres_database(pg_url, "e2e")
        try:
            admin_sql(pg_url, f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
            admin_sql(pg_url, f'CREATE DATABASE "{pg_name}"')
        except Exception as exc:  # noqa: BLE001 - any connection failure means the service is missing
            service_missing(f"PostgreSQL at DATABASE_URL is not usable: {exc}")
    else:
        env["DATABASE_URL"] = f"sqlite:///{work / 'e2e.sqlite3'}"

    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=300
    )
    seeded = Server(url="", env=env, seed={}, log=ARTIFACTS / "daphne.log").scenario("seed")

    port = int(os.getenv("E2E_PORT") or free_port())
    log = ARTIFACTS / "daphne.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "examsite.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, proc, log)
        yield Server(url=f"http://127.0.0.1:{port}", env=env, seed=seeded, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if pg_name:
            admin_sql(pg_url, f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    built = clip.build_phase_clips(Path(settings.DATA_DIR) / "evalset", tmp_path_factory.mktemp("clips"))
    clip.preview(built, ARTIFACTS / "clips.png")
    return built


class Phase:
    """One browser process playing one clip, with the signed-in session carried in from the previous phase."""

    def __init__(self, playwright, clip_path: Path, storage_state: dict | None, name: str):
        self.name = name
        self.errors: list[str] = []
        self.console = (ARTIFACTS / f"{name}.console.log").open("w")
        self.browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={clip_path}"],
        )
        self.context = self.browser.new_context(viewport={"width": 1280, "height": 1000}, storage_state=storage_state)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.console.write(f"{m.type}: {m.text}\n"))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def shot(self, label: str) -> Path:
        path = ARTIFACTS / f"{self.name}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def at_laptop_widths(self, label: str, *controls: str) -> None:
        """At 1280 and 1024 px the page has no sideways scroll and each key control is on screen; a shot of each."""
        for width in (1280, 1024):
            self.page.set_viewport_size({"width": width, "height": 1000})
            overflow = self.page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, (label, width, overflow)
            for selector in controls:
                box = self.page.locator(selector).first.bounding_box()
                assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (label, width, selector)
            self.shot(f"{label}-{width}")
        self.page.set_viewport_size({"width": 1280, "height": 1000})

    def close(self) -> dict:
        state = self.context.storage_state()
        self.browser.close()
        self.console.close()
        assert not self.errors, f"JavaScript errors in phase {self.name}: {self.errors}"
        return state

    def events_shown(self) -> list[str]:
        return self.page.eval_on_selector_all("#proctor-alerts li", "items => items.map(li => li.dataset.event)")


def wait_for_event(phase: Phase, event: str, timeout: int = EVENT_TIMEOUT_MS, *, flagged: bool = False) -> str:
    """Wait until the panel shows `event`; with flagged, until it shows the one that opened a flag (k of n)."""
    selector = f'#proctor-alerts li[data-event="{event}"]' + ("[data-flag-id]" if flagged else "")
    return phase.page.wait_for_selector(selector, timeout=timeout).inner_text()


def test_a_student_sits_a_webcam_proctored_exam_end_to_end(server: Server, clips: dict[str, Path]):
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    url = server.url
    seed = server.seed
    shown: dict[str, list[str]] = {}
    with sync_playwright() as pw:
        phase = None
        try:
            # 0. Sign in and consent; enrolling in an empty room gets calm guidance and counts no photo.
            phase = Phase(pw, clips["nobody"], None, "0-consent")
            page = phase.page
            page.goto(f"{url}/accounts/login/?next=/proctoring/enrol/")
            page.fill("#id_username", seed["username"])
            page.fill("#id_password", seed["password"])
            page.click("main button[type=submit]")
            page.wait_for_url(re.compile(r"/proctoring/consent/"))
            assert "How long it is kept" in page.inner_text("main")
            phase.at_laptop_widths("consent", "#id_understood", "button[value=accept]")
            page.check("#id_understood")
            page.click("button[value=accept]")
            page.wait_for_url(re.compile(r"/proctoring/enrol/"))
            page.click("#start")
            page.wait_for_function(
                "() => document.getElementById('guidance').textContent.includes(\"couldn't find a face\")",
                timeout=FIRST_EVENT_TIMEOUT_MS,
            )
            assert page.inner_text("#progress-text") == "0 of 5 good photos"
            phase.at_laptop_widths("enrol-guidance", "#guidance", "#stop")
            page.click("#stop")
            page.wait_for_selector("#stop", state="hidden")
            state = phase.close()

            # 1. Enrol, start the exam, pass the system check, and the exam page with the right person.
            phase = Phase(pw, clips["enrol"], state, "1-enrol")
            page = phase.page
            page.goto(f"{url}/proctoring/enrol/")
            page.click("#start")
            page.wait_for_selector("#result:not([hidden]) h2", timeout=FIRST_EVENT_TIMEOUT_MS)
            phase.at_laptop_widths("enrolled", "#result h2")
            assert_accessible(page, "face enrolment")
            assert page.inner_text("#result h2") == "You are enrolled", page.inner_text("#result")
            assert page.inner_text("#progress-text") == "5 of 5 good photos"

            # The system check, from the exam's page, before the exam clock starts; Start is its last step.
            page.goto(f"{url}/exams/{seed['exam_id']}/")
            page.click("a:has-text('Check your camera and connection')")
            page.wait_for_url(re.compile(r"/proctoring/check/exam/\d+/$"))
            assert "Your exam time has not started" in page.inner_text("#time-not-started")
            page.wait_for_selector("#check[data-done]", timeout=FIRST_EVENT_TIMEOUT_MS)
            phase.at_laptop_widths("system-check", "#checklist", "#continue")
            assert_accessible(page, "the system check")
            results = page.eval_on_selector_all(
                "#checklist li", "items => items.map(li => [li.id, li.dataset.state, li.innerText])"
            )
            assert all(state == "pass" for _, state, _ in results), results

            page.click("#continue")
            page.wait_for_url(re.compile(r"/attempts/\d+/$"))
            attempt_id = int(re.search(r"/(\d+)/", urlsplit(page.url).path).group(1))
            page.wait_for_selector('#proctor-connection[data-state="connected"]', timeout=EVENT_TIMEOUT_MS)
            wait_for_event(phase, "AUTHORIZED", FIRST_EVENT_TIMEOUT_MS)
            page.wait_for_function(
                "() => document.getElementById('proctor-attention-label').textContent.includes('of 100')",
                timeout=EVENT_TIMEOUT_MS,
            )
            # A browser integrity signal, reported on the same stream.
            page.evaluate("document.dispatchEvent(new Event('paste'))")
            page.wait_for_timeout(700)
            phase.at_laptop_widths(
                "exam-right-person", "#timer", "#proctor-connection", "#proctor-fullscreen", "#submit-open"
            )
            assert_accessible(page, "the exam page")
            shown["right_person"] = phase.events_shown()
            state = phase.close()

            # 2-5. Someone else, two faces, nobody, a phone: each a fresh browser resuming the same session.
            for name, clip_name, expected in [
                ("2-other-person", "other_person", "IDENTITY_MISMATCH"),
                ("3-two-faces", "two_faces", "MULTIPLE_FACES"),
                ("4-nobody", "nobody", "FACE_NOT_FOUND"),
                ("5-phone", "phone", "PHONE_DETECTED"),
            ]:
                phase = Phase(pw, clips[clip_name], state, name)
                page = phase.page
                page.goto(f"{url}/attempts/{attempt_id}/")
                page.wait_for_selector('#proctor-connection[data-state="connected"]', timeout=EVENT_TIMEOUT_MS)
                assert "session continues" in page.inner_text("#proctor-connection")
                text = wait_for_event(phase, expected, flagged=True)
                assert text.strip(), expected
                phase.shot("exam")
                shown[clip_name] = phase.events_shown()
                if clip_name != "phone":
                    state = phase.close()

            # 6. Answer and submit; the exam is never ended by the page itself.
            page.get_by_role("radio", name="4", exact=True).check()
            page.click("#submit-open")
            page.click("#confirm-submit")
            page.wait_for_url(re.compile(rf"/attempts/{attempt_id}/results/"))
            phase.at_laptop_widths("results", "#score", "#my-flags-link")
            phase.close()
        except Exception:
            # Leave a picture of where it stopped, for CI logs.
            if phase is not None and phase.browser.is_connected():
                phase.shot("failure")
            raise

    print(f"e2e: events shown per phase: {shown}; {time.monotonic() - started:.1f} s")
    assert "AUTHORIZED" in shown["right_person"]
    assert "IDENTITY_MISMATCH" in shown["other_person"]
    assert "MULTIPLE_FACES" in shown["two_faces"]
    assert "FACE_NOT_FOUND" in shown["nobody"]
    assert "PHONE_DETECTED" in shown["phone"]
    # The right person raised no problem of their own.
    assert not {"IDENTITY_MISMATCH", "MULTIPLE_FACES", "FACE_NOT_FOUND", "PHONE_DETECTED"} & set(
        shown["right_person"]
    ), shown["right_person"]

    report = server.scenario("report", str(attempt_id))
    (ARTIFACTS / "report.json").write_text(json.dumps(report, indent=2))
    assert report["attempt_status"] == "submitted"
    assert report["consents"] and report["consents"][-1]["accepted"] is True
    assert report["face_template"] and report["face_template"]["frames_used"] >= 3
    assert len(report["sessions"]) == 1, report["sessions"]
    session = report["sessions"][0]
    assert session["resumed_count"] >= 4, session
    assert session["status"] == "ended", "submitting the exam ends its proctoring session"
    assert session["observations"] > 0
    kinds = {flag["kind"] for flag in report["flags"]}
    assert {"identity_mismatch", "multiple_faces", "face_not_found", "phone_detected"} <= kinds, report["flags"]
    for flag in report["flags"]:
        assert flag["model_version"], flag
        assert 0 <= flag["confidence"] <= 1 and flag["threshold"] is not None, flag
        assert flag["snapshots"], f"flag {flag['kind']} has no snapshot"
        for snapshot in flag["snapshots"]:
            assert snapshot["jpeg"] and snapshot["file_bytes"] == snapshot["size_bytes"], snapshot
    assert "paste" in report["signals"], report["signals"]
    assert "camera_started" in report["signals"], report["signals"]
