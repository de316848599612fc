"""The photo ID check (issue 11) on a card built from real photos: face sizes, similarities and time.

    python bench/photo_id.py [--repeat 15]

A card printed with a real portrait (tests/idcard.py: text, gloss, a slight perspective) is held beside the
astronaut's face in a 640x480 frame, at several card widths; her own card and Grace Hopper's. For each: the printed
face's size in pixels, its similarity to an enrolment made from the astronaut's webcam-like frame, and the time of
the check's vision work (the whole-frame and half-frame face searches and both embeddings), median of --repeat runs
on one thread. The same-photo caveat: no registry package has two photos of one person, so the genuine similarity
here is an upper bound for a real card.

Writes bench/results/photo_id.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examsite.settings")

CARD_WIDTHS = (200, 230, 260, 320)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    import django

    django.setup()
    from bench import evalset
    from proctoring.vision.idphoto import MIN_ID_FACE_PX, id_faces, width
    from proctoring.vision.pipeline import cosine, get_analyzer
    from tests.idcard import holding_id, id_card, portrait

    analyzer = get_analyzer("default", threads=1)
    astronaut = evalset.load("astronaut")
    live = evalset.webcam_frame(astronaut)
    enrolled = analyzer.describe_face(live, analyzer.detector.detect(live)[0]).embedding
    rows = []
    for owner in ("astronaut", "grace_hopper"):
        photo = evalset.load(owner)
        card = id_card(portrait(photo, analyzer.detector.detect(photo)[0].box))
        for card_width in CARD_WIDTHS:
            frame = holding_id(astronaut, card, card_width=card_width)
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                found = id_faces(analyzer.detector, frame)
                printed = analyzer.describe_face(frame, found.card).embedding if found.card else None
                analyzer.describe_face(frame, found.live)
                times.append((time.perf_counter() - started) * 1000)
            row = {
                "card_owner": owner,
                "card_width_px": card_width,
                "faces_found": found.count,
                "printed_face_px": round(width(found.card)) if found.card else None,
                "similarity": round(cosine(printed, enrolled), 3) if printed is not None else None,
                "check_ms_median": round(statistics.median(times), 1),
            }
            rows.append(row)
            print(json.dumps(row))
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python bench/photo_id.py " + " ".join(sys.argv[1:]),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "threshold": analyzer.identity_threshold,
        "min_printed_face_px": MIN_ID_FACE_PX,
        "rows": rows,
    }
    out = ROOT / "bench" / "results" / "photo_id.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
