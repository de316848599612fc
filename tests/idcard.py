"""A photo ID held up to a webcam, built from real photos (issue 11).

No registry package ships a photo of an identity card, so the tests print a real face photo onto a card-like image
(ID-1 proportions, a header band, text lines, a glossy sheen), tilt it with a slight perspective, and paste it beside
a live face in a 640x480 webcam frame, where a student holding their card next to their face would show it.
"""

from __future__ import annotations

import cv2
import numpy as np

CARD_W, CARD_H = 428, 270  # ISO/IEC 7810 ID-1, 85.60 x 53.98 mm, at 5 px/mm


def portrait(photo: np.ndarray, box) -> np.ndarray:
    """A head-and-shoulders crop around the face `box` (x1, y1, x2, y2), as on an ID: the face about half its width."""
    x1, y1, x2, y2 = box
    side = 1.9 * max(x2 - x1, y2 - y1)
    h, w = photo.shape[:2]
    left = int(max(0, (x1 + x2) / 2 - side / 2))
    top = int(max(0, (y1 + y2) / 2 - side / 2))
    return photo[top : int(min(h, top + side)), left : int(min(w, left + side))]


def id_card(face_photo: np.ndarray, *, name: str = "Eileen Collins", number: str = "S-0042-1995") -> np.ndarray:
    """A student card (BGR, CARD_W x CARD_H) with `face_photo` (see portrait) printed as its portrait."""
    card = np.full((CARD_H, CARD_W, 3), (236, 226, 214), dtype=np.uint8)
    cv2.rectangle(card, (0, 0), (CARD_W, 46), (120, 70, 20), thickness=-1)
    cv2.putText(card, "UNIVERSITY OF EXAMPLE", (16, 31), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
    # The portrait: a centred square crop of the photo in a 140x180 box, as printed on cards.
    h, w = face_photo.shape[:2]
    side = min(h, w)
    square = face_photo[(h - side) // 2 : (h - side) // 2 + side, (w - side) // 2 : (w - side) // 2 + side]
    portrait = cv2.resize(square, (150, 150), interpolation=cv2.INTER_AREA)
    card[70:220, 18:168] = portrait
    cv2.rectangle(card, (17, 69), (168, 220), (90, 90, 90), 1)
    for row, (label, value) in enumerate((("Name", name), ("Student no.", number), ("Valid until", "31/08/2027"))):
        y = 90 + row * 50
        cv2.putText(card, label, (185, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (90, 90, 90), 1, cv2.LINE_AA)
        cv2.putText(card, value, (185, y + 22), cv2.FONT_HERSHEY_SIMPLEX, 0.62, (30, 30, 30), 1, cv2.LINE_AA)
    cv2.putText(card, "STUDENT", (185, 250), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (120, 70, 20), 2, cv2.LINE_AA)
    # Gloss: a soft bright band across the laminate.
    yy, xx = np.mgrid[0:CARD_H, 0:CARD_W]
    band = np.exp(-(((xx - 1.4 * yy - 60) / 70.0) ** 2)) * 45
    return np.clip(card.astype(np.float32) + band[..., None], 0, 255).astype(np.uint8)


def holding_id(live_photo: np.ndarray, card: np.ndarray, *, card_width: int = 260) -> np.ndarray:
    """A 640x480 webcam frame: the live photo on the left (480x480), and the card held up on the right, `card_width`
    px wide, turned slightly away from the camera (a perspective of a few per cent)."""
    frame = np.zeros((480, 640, 3), dtype=np.uint8)
    frame[:, :480] = cv2.resize(live_photo, (480, 480), interpolation=cv2.INTER_AREA)
    height = round(card_width * CARD_H / CARD_W)
    x0, y0 = 640 - card_width - 12, 150
    # The right edge is a little further from the camera than the left: shorter, and pulled in.
    target = np.float32(
        [[x0, y0], [x0 + card_width, y0 + 0.04 * height], [x0 + card_width - 6, y0 + 0.95 * height], [x0, y0 + height]]
    )
    source = np.float32([[0, 0], [CARD_W, 0], [CARD_W, CARD_H], [0, CARD_H]])
    warp = cv2.getPerspectiveTransform(source, target)
    printed = cv2.warpPerspective(card, warp, (640, 480), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((CARD_H, CARD_W), 255, np.uint8), warp, (640, 480))
    frame[mask > 127] = printed[mask > 127]
    return frame
