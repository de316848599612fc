"""Forms for the instructor pages. They parse and validate input; the services decide the rules."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils import timezone

from accounts.models import User
from proctoring import rules

from .models import Exam, Question
from .services import ChoiceSpec

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


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs=attrs, format="%Y-%m-%dT%H:%M")


class ExamForm(forms.Form):
    title = forms.CharField(max_length=200)
    instructions = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), required=False)
    opens_at = forms.DateTimeField(
        label="Opens at", widget=DateTimeLocalInput(), input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
    )
    closes_at = forms.DateTimeField(
        label="Closes at", widget=DateTimeLocalInput(), input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
    )
    duration_minutes = forms.IntegerField(label="Duration (minutes)", min_value=1, max_value=24 * 60, initial=60)
    max_attempts = forms.IntegerField(label="Attempts allowed per student", min_value=1, max_value=20, initial=1)
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
        # A typed time is read in the reader's zone (examsite.middleware.TimeZoneMiddleware); say which.
        zone = timezone.get_current_timezone_name()
        for name in ("opens_at", "closes_at"):
            self.fields[name].help_text = f"In your time zone, {zone}. Students see their own local time too."
        if self.initial.get("sensitivity") == CUSTOM:
            self.fields["sensitivity"].choices = [
                *SENSITIVITIES,
                (CUSTOM, "Custom (set on the review page): keep it"),
            ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        opens, closes = data.get("opens_at"), data.get("closes_at")
        if opens and closes and closes <= opens:
            self.add_error("closes_at", "The exam must close after it opens.")
        return data

    @classmethod
    def initial_for(cls, exam: Exam) -> dict[str, Any]:
        try:
            current = rules.RuleSettings.from_config(exam.proctoring_settings)
        except ValueError:
            current = rules.RuleSettings()
        preset = next((name for name, kn in SENSITIVITY_PRESETS.items() if kn == (current.k, current.n)), CUSTOM)
        return {
            "title": exam.title,
            "instructions": exam.instructions,
            "opens_at": timezone.localtime(exam.opens_at),
            "closes_at": timezone.localtime(exam.closes_at),
            "duration_minutes": exam.duration_minutes,
            "max_attempts": exam.max_attempts,
            "proctoring_enabled": exam.proctoring_enabled,
            "frame_interval_seconds": max(1, round(current.frame_interval_ms / 1000)),
            "checks": [key for key, _ in PROCTORING_CHECKS if key in current.checks],
            "sensitivity": preset,
            "identity_assurance": exam.identity_assurance,
            "photo_id_required": exam.photo_id_required,
        }

    def service_kwargs(self) -> dict[str, Any]:
        """Arguments for exam_create/exam_update. The proctoring settings given here are merged over the stored
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
            "title": data["title"],
            "instructions": data["instructions"],
            "opens_at": data["opens_at"],
            "closes_at": data["closes_at"],
            "duration_minutes": data["duration_minutes"],
            "max_attempts": data["max_attempts"],
            "proctoring_enabled": data["proctoring_enabled"],
            "proctoring_settings": settings,
            # Left out (a form from before the setting): keep what the exam has.
            "identity_assurance": data.get("identity_assurance") or None,
            "photo_id_required": data.get("photo_id_required", False),
        }


class QuestionForm(forms.Form):
    kind = forms.ChoiceField(choices=Question.Kind.choices, widget=forms.RadioSelect, initial=Question.Kind.SINGLE)
    text = forms.CharField(label="Question", widget=forms.Textarea(attrs={"rows": 3}))
    points = forms.DecimalField(min_value=0, max_digits=6, decimal_places=2, initial=1)


class ChoiceForm(forms.Form):
    id = forms.IntegerField(widget=forms.HiddenInput, required=False)
    text = forms.CharField(label="Choice text", max_length=500, required=False)
    is_correct = forms.BooleanField(label="Correct", required=False)


# A new question gets four blank rows; an existing one its choices plus two.
NewChoiceFormSet = forms.formset_factory(ChoiceForm, extra=4, can_delete=True, max_num=20, absolute_max=40)
ChoiceFormSet = forms.formset_factory(ChoiceForm, extra=2, can_delete=True, max_num=20, absolute_max=40)


def choice_specs(formset: forms.BaseFormSet) -> list[ChoiceSpec]:
    """The choices a valid formset describes; blank rows and rows marked for deletion are left out."""
    specs = []
    for form in formset.forms:
        data = getattr(form, "cleaned_data", None) or {}
        if data.get("DELETE") or not (data.get("text") or "").strip():
            continue
        specs.append(ChoiceSpec(text=data["text"], is_correct=bool(data.get("is_correct")), id=data.get("id")))
    return specs


class EnrolForm(forms.Form):
    students = forms.ModelMultipleChoiceField(
        queryset=User.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label="Pick students",
    )
    identifiers = forms.CharField(
        label="Usernames or emails",
        help_text="One per line, or separated by commas.",
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
    )

    def __init__(self, *args: Any, candidates: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if candidates is not None:
            self.fields["students"].queryset = candidates

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("students") and not (data.get("identifiers") or "").strip():
            raise forms.ValidationError("Pick at least one student, or paste usernames or emails.")
        return data


class ExtraTimeForm(forms.Form):
    extra_minutes = forms.IntegerField(label="Extra minutes", min_value=0, max_value=24 * 60)


class GradeForm(forms.Form):
    points = forms.DecimalField(min_value=0, max_digits=6, decimal_places=2)
    feedback = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
