"""Seed the shared database of test_scale_out.py: the live monitor's exam (charlie's, with alice and bob sitting it,
tests/review/monitor_seed.py), alice enrolled for real with the default model pack from the astronaut photo, and a
signed-in session for alice and for charlie.

Run inside the servers' environment: `python manage.py shell -c "from tests.proctoring.scale_out_seed import main;
main()"`. Prints the ids and the session cookies as JSON on the last line.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.test import Client

from accounts.models import User
from proctoring.services.enrolment import face_enrol
from tests.e2e import clip
from tests.review.monitor_seed import seed_exam


def session_cookie(user: User) -> str:
    """A real signed-in session in the shared database (Django's own login), as the browser would hold it."""
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def main() -> None:
    seeded = seed_exam()
    alice = User.objects.get(username="alice")
    # The e2e test's enrolment face: the astronaut, framed as a 640x480 webcam would show her, jittered by a pixel
    # or two per photo so that the template is not made of one repeated buffer.
    face = clip.fit(clip.source_image(clip.PHASES["enrol"], Path(settings.DATA_DIR) / "evalset"))
    enrolment = face_enrol(user=alice, images=list(clip.jitter(face, 5)))
    assert enrolment.template is not None, enrolment.rejections
    seeded["cookies"] = {
        "alice": session_cookie(alice),
        "charlie": session_cookie(User.objects.get(username="charlie")),
    }
    print(json.dumps(seeded))
