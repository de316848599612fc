"""Forms for the proctoring pages, and proctoring's section of the exam form (registered with exams.hooks, so that
exams does not import proctoring)."""

from __future__ import annotations

from typing import Any

from django import forms

from exams.models import Exam
from proctoring import rules


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

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError("The file is larger than 200 MB.")
        return upload


# The proctoring settings an instructor sets on the exam form, stored in Exam.proctoring_settings in the shape
# proctoring.rules.RuleSettings.from_config reads: "checks" (a list of check names), "frame_interval_ms", and k of
# n (a flag needs k positive frames among the last n). "sensitivity" names the k-of-n preset for this form; the
# review page can set k and n freely, which shows here as "custom" and is left alone. Other keys are never touched.
PROCTORING_CHECKS = [
    (rules.IDENTITY_MISMATCH, "Identity (the enrolled student is the one on camera)"),
    (rules.MULTIPLE_FACES, "More than one person in view"),
    (rules.PHONE_DETECTED, "Phone in view"),
    (rules.LOOKING_AWAY, "Looking away from the screen"),
    (rules.FACE_NOT_FOUND, "Face not visible"),
]
SENSITIVITY_PRESETS = {"low": (4, 5), "medium": (3, 5), "high": (2, 5)}
SENSITIVITIES = [
    ("low", "Low: a flag needs 4 of the last 5 frames (fewer flags)"),
    ("medium", "Medium: 3 of the last 5 frames"),
    ("high", "High: 2 of the last 5 frames (more flags)"),
]
CUSTOM = "custom"
DEFAULT_FRAME_INTERVAL_SECONDS = rules.RuleSettings().frame_interval_ms // 1000


class ExamProctoringForm(forms.Form):
    """The exam form's "Proctoring" section: webcam proctoring on or off, the frame interval, the checks, the
    sensitivity, and what must be known of who enrolled. Rendered by `section_template`; its service_kwargs join the
    exam form's for exam_create/exam_update."""

    legend = "Proctoring"
    section_template = "proctoring/_exam_form_section.html"

    proctoring_enabled = forms.BooleanField(label="Proctor this exam with the webcam", required=False, initial=True)
    frame_interval_seconds = forms.IntegerField(
        label="Seconds between webcam frames",
        min_value=1,
        max_value=30,
        initial=DEFAULT_FRAME_INTERVAL_SECONDS,
        help_text="Longer intervals are lighter on students' laptops and connections.",
    )
    checks = forms.MultipleChoiceField(
        label="Checks",
        choices=PROCTORING_CHECKS,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        initial=[key for key, _ in PROCTORING_CHECKS],
    )
    sensitivity = forms.ChoiceField(choices=SENSITIVITIES, initial="medium", widget=forms.RadioSelect)
    identity_assurance = forms.ChoiceField(
        label="Identity check before the exam starts",
        choices=Exam.IdentityAssurance.choices,
        required=False,
        initial=Exam.IdentityAssurance.NONE,
        widget=forms.RadioSelect,
        help_text=(
            "Compares the student's webcam enrolment with the reference photo an admin or instructor added, and with "
            "the photo ID when the exam asks for one. "
            "A mismatch is never final: a person reviews it in the identity queue."
        ),
    )

    photo_id_required = forms.BooleanField(
        label="Ask for a photo ID",
        required=False,
        help_text=(
            "Before the exam starts, the student holds a photo ID up beside their face once per enrolment. The face on "
            "the ID is matched with the enrolment, and the picture kept as evidence in the identity queue."
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.initial.get("sensitivity") == CUSTOM:
            self.fields["sensitivity"].choices = [
                *SENSITIVITIES,
                (CUSTOM, "Custom (set on the review page): keep it"),
            ]

    @classmethod
    def initial_for(cls, exam: Exam) -> dict[str, Any]:
        current = rules.RuleSettings.from_config_or_default(exam.proctoring_settings)
        preset = next((name for name, kn in SENSITIVITY_PRESETS.items() if kn == (current.k, current.n)), CUSTOM)
        return {
            "proctoring_enabled": exam.proctoring_enabled,
            "frame_interval_seconds": max(1, round(current.frame_interval_ms / 1000)),
            "checks": [key for key, _ in PROCTORING_CHECKS if key in current.checks],
            "sensitivity": preset,
            "identity_assurance": exam.identity_assurance,
            "photo_id_required": exam.photo_id_required,
        }

    def service_kwargs(self) -> dict[str, Any]:
        """The proctoring arguments of exam_create/exam_update. The settings given here are merged over the stored
        ones by exam_update, so keys this form doesn't edit survive."""
        data = self.cleaned_data
        settings: dict[str, Any] = {
            "frame_interval_ms": data["frame_interval_seconds"] * 1000,
            "checks": sorted(data["checks"]),
        }
        settings["sensitivity"] = data["sensitivity"]
        if data["sensitivity"] in SENSITIVITY_PRESETS:
            settings["k"], settings["n"] = SENSITIVITY_PRESETS[data["sensitivity"]]
        return {
            "proctoring_enabled": data["proctoring_enabled"],
            "proctoring_settings": settings,
            # Left out (a form from before the setting): keep what the exam has.
            "identity_assurance": data.get("identity_assurance") or None,
            "photo_id_required": data.get("photo_id_required", False),
        }
