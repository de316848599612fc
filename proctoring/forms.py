"""Forms for the student-facing proctoring pages."""

from __future__ import annotations

from django import forms


class ConsentForm(forms.Form):
    """The student's answer to the proctoring notice.

    Accepting needs the box ticked, so that a stray Enter key on the page never counts as consent. Declining needs
    nothing: it is always allowed and only records the answer.
    """

    ACCEPT = "accept"
    DECLINE = "decline"

    decision = forms.ChoiceField(choices=[(ACCEPT, "Accept"), (DECLINE, "Decline")])
    understood = forms.BooleanField(
        required=False,
        label="I have read this notice and agree to be proctored by webcam during my exams.",
    )

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("decision") == self.ACCEPT and not cleaned.get("understood"):
            self.add_error("understood", "Please tick the box to confirm you have read the notice.")
        return cleaned
