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


class ReferencePhotoUploadForm(forms.Form):
    """The admin's upload of reference photos: one student's photo, or a zip of photos named by username."""

    label_suffix = ""

    student = forms.CharField(
        label="Student's username",
        required=False,
        help_text="For one photo. Leave empty to upload a zip of photos named by username (alice.jpg, bob.png).",
    )
    file = forms.FileField(
        label="Photo or zip",
        help_text="JPEG, PNG or WebP, one face, facing the camera; or a zip of such photos. At most 200 MB.",
        widget=forms.ClearableFileInput(attrs={"accept": ".jpg,.jpeg,.png,.webp,.zip"}),
    )
    dry_run = forms.BooleanField(label="Check only: report problems without attaching anything", required=False)

    MAX_BYTES = 200 * 1024 * 1024

    def clean_file(self):  # type: ignore[no-untyped-def]
        upload = self.cleaned_data["file"]
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError("The file is larger than 200 MB.")
        return upload
