"""What every human decision shares, in proctoring (who enrolled) and in review (flags): a refusal the person who
asked may read, and a note of bounded length. Here, not in review, because proctoring's identity decisions use them
too and proctoring never imports review."""

from __future__ import annotations

NOTE_MAX = 2000


class ReviewError(ValueError):
    """A review request that cannot be honoured; `message` is safe to show to the person who asked."""

    def __init__(self, message: str, *, code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def decision_note(note: str | None) -> str:
    """The note of a decision, stripped; refused when longer than NOTE_MAX."""
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ReviewError(f"The note is too long ({len(note)} characters; at most {NOTE_MAX}).", code="note_too_long")
    return note
