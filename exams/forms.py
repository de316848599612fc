"""Forms for the instructor pages. They parse and validate input; the services decide the rules."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils import timezone

from accounts.models import User

from .models import Exam, Question
from .services import ChoiceSpec


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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A typed time is read in the reader's zone (examsite.middleware.TimeZoneMiddleware); say which.
        zone = timezone.get_current_timezone_name()
        for name in ("opens_at", "closes_at"):
            self.fields[name].help_text = f"In your time zone, {zone}. Students see their own local time too."

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        opens, closes = data.get("opens_at"), data.get("closes_at")
        if opens and closes and closes <= opens:
            self.add_error("closes_at", "The exam must close after it opens.")
        return data

    @classmethod
    def initial_for(cls, exam: Exam) -> dict[str, Any]:
        return {
            "title": exam.title,
            "instructions": exam.instructions,
            "opens_at": timezone.localtime(exam.opens_at),
            "closes_at": timezone.localtime(exam.closes_at),
            "duration_minutes": exam.duration_minutes,
            "max_attempts": exam.max_attempts,
        }

    def service_kwargs(self) -> dict[str, Any]:
        """Arguments for exam_create/exam_update; the sections other apps add (exams.hooks) add theirs."""
        data = self.cleaned_data
        return {
            "title": data["title"],
            "instructions": data["instructions"],
            "opens_at": data["opens_at"],
            "closes_at": data["closes_at"],
            "duration_minutes": data["duration_minutes"],
            "max_attempts": data["max_attempts"],
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
