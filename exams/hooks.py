"""What the apps built on exams add to it, without exams importing them (issue 10: accounts <- exams <- proctoring).
Each registers in its AppConfig.ready():

- the start gate: the set-up a student must finish before an exam's clock starts (proctoring's consent, enrolment,
  photo ID and identity), asked through `setup_status`;
- sections of the exam form (proctoring's settings): a Form class with `legend`, `section_template`,
  `initial_for(exam)` and `service_kwargs()`, whose arguments join the exam form's for exam_create/exam_update;
- whether an exam has evidence to review (proctoring's sessions), so that its page links to review even after
  proctoring is switched off, asked through `exam_has_evidence`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from accounts.models import User
from exams.models import Exam


class SetupStatus(Protocol):
    """What a provider answers: `missing` names the first step still to do (for example "consent"), or is None."""

    @property
    def missing(self) -> str | None: ...


SetupProvider = Callable[..., Any]
_providers: list[SetupProvider] = []


def setup_provider_register(provider: SetupProvider) -> None:
    """Register `provider(user=..., exam=...) -> SetupStatus`; registering the same one twice is harmless."""
    if provider not in _providers:
        _providers.append(provider)


def setup_status(*, exam: Exam, student: User) -> Any | None:
    """The first provider's status of `student`'s set-up for `exam` (what the exam's page shows), or None when no
    app gates the start."""
    for provider in _providers:
        return provider(user=student, exam=exam)
    return None


class FormSection(Protocol):
    """A section of the exam form, as exam_form_sections builds it: a Django Form class with these."""

    legend: str
    section_template: str

    def __init__(self, data: Any = None, *, initial: dict[str, Any] | None = None) -> None: ...

    @classmethod
    def initial_for(cls, exam: Exam) -> dict[str, Any]: ...

    def is_valid(self) -> bool: ...

    def service_kwargs(self) -> dict[str, Any]: ...


_form_sections: list[type[FormSection]] = []


def exam_form_section_register(form_class: type[FormSection]) -> None:
    if form_class not in _form_sections:
        _form_sections.append(form_class)


def exam_form_sections(data: Any = None, *, exam: Exam | None = None) -> list[FormSection]:
    """The registered sections of the exam form, bound to `data` (a POST) and filled from `exam` when editing."""
    return [
        section(data, initial=section.initial_for(exam) if exam is not None else None) for section in _form_sections
    ]


EvidenceProvider = Callable[..., bool]
_evidence_providers: list[EvidenceProvider] = []


def evidence_provider_register(provider: EvidenceProvider) -> None:
    """Register `provider(exam=...) -> bool`: whether the app keeps evidence of the exam's attempts."""
    if provider not in _evidence_providers:
        _evidence_providers.append(provider)


def exam_has_evidence(*, exam: Exam) -> bool:
    return any(provider(exam=exam) for provider in _evidence_providers)
