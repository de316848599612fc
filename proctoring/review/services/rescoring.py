"""Re-scoring: apply new sensitivity to an exam after the fact, from the stored observations, without any model.

`rescore_preview` and `rescore_apply` share one planner, so what the instructor previews is exactly what applying
does (given the same stored data). The planner runs proctoring.rules.rescore() over each ended session's Observation
rows and reconciles the spans it returns with the flags already stored:

1. A reviewed flag (confirmed or dismissed) is never changed. A new span that overlaps it is covered by it; a
   reviewed flag that the new settings no longer raise is kept and reported as a conflict for the instructor.
2. An open flag overlapped by a new span of its kind is updated in place (times, confidence, threshold), keeping its
   snapshots.
3. An open flag that no new span overlaps is withdrawn (FlagWithdrawal), not deleted: its evidence stays, and going
   back to the old settings restores it.
4. A span that overlaps nothing becomes a new open flag.
Sessions still streaming are left alone: the live consumer owns their flags until they end. So are sessions whose
observations retention has deleted (proctoring.services.retention.evidence_purge): re-scoring nothing would withdraw
every open flag, and their flags are all that is left of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.db.models import Count

from accounts.models import User
from exams.models import Enrollment, Exam
from proctoring import rules
from proctoring.decisions import ReviewError
from proctoring.models import Flag, Observation, ProctoringSession
from proctoring.permissions import user_can_review_exam
from proctoring.review.models import FlagDecision, FlagWithdrawal, RescoreRun
from proctoring.selectors import frame_records_for_session
from proctoring.services.sessions import model_version_of

INF = 1 << 62
REVIEWED = (Flag.Status.CONFIRMED, Flag.Status.DISMISSED)


def rescore_settings(
    *, config: Mapping[str, Any], accommodations: Mapping[str, Any] | None = None
) -> rules.RuleSettings:
    """Validate an exam settings object; a bad value is a ReviewError naming the key."""
    try:
        return rules.RuleSettings.from_config(config, accommodations)
    except (ValueError, TypeError) as exc:
        raise ReviewError(f"These settings can't be used: {exc}.", code="bad_settings") from None


@dataclass(frozen=True)
class Conflict:
    flag_id: int
    kind: str
    status: str
    started_at: datetime
    reason: str


@dataclass(frozen=True)
class _Op:
    op: str  # "create" | "update" | "restore" | "withdraw"
    session_id: int
    flag_id: int | None = None
    span: rules.FlagSpan | None = None
    kind: str = ""  # the flag's kind, where there is no span (withdraw)


@dataclass(frozen=True)
class FlagChange:
    """One flag's change in a preview, in words: which flag opens, moves, closes or comes back, and from when."""

    verb: str  # "opens" | "moves" | "closes" | "comes back"
    kind: str
    label: str
    flag_id: int | None
    started_at: datetime | None  # where the new span starts (None when the flag closes)
    started_seq: int | None

    def __str__(self) -> str:
        name = self.label if self.flag_id is None else f"{self.label} (flag {self.flag_id})"
        return f"{name} {self.verb}" + (f" from frame {self.started_seq}" if self.started_seq is not None else "")


@dataclass
class AttemptPlan:
    attempt_id: int
    student: str
    before: Counter[str] = field(default_factory=Counter)
    after: Counter[str] = field(default_factory=Counter)
    created: int = 0
    updated: int = 0
    withdrawn: int = 0
    restored: int = 0
    live_sessions: int = 0
    purged_sessions: int = 0
    conflicts: list[Conflict] = field(default_factory=list)
    ops: list[_Op] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.withdrawn or self.restored)

    def changes(self) -> list[FlagChange]:
        """Which flags open, move, close or come back, in the order of their frames (closes last)."""
        labels = dict(Flag.Kind.choices)
        verbs = {"create": "opens", "update": "moves", "withdraw": "closes", "restore": "comes back"}
        out = []
        for op in self.ops:
            kind = op.span.kind if op.span is not None else op.kind
            out.append(
                FlagChange(
                    verb=verbs[op.op],
                    kind=kind,
                    label=labels.get(kind, kind),
                    flag_id=op.flag_id,
                    started_at=datetime.fromtimestamp(op.span.started_at, UTC) if op.span is not None else None,
                    started_seq=op.span.started_seq if op.span is not None else None,
                )
            )
        return sorted(out, key=lambda c: (c.started_seq is None, c.started_seq or 0, c.flag_id or 0))

    def rows(self) -> list[tuple[str, str, int, int]]:
        """(kind, label, before, after) for every kind present before or after, in the rules' order."""
        labels = dict(Flag.Kind.choices)
        return [
            (kind, labels.get(kind, kind), self.before[kind], self.after[kind])
            for kind in rules.CHECKS
            if self.before[kind] or self.after[kind]
        ]


@dataclass
class RescorePlan:
    exam_id: int
    config_before: dict[str, Any]
    config_after: dict[str, Any]
    attempts: list[AttemptPlan]

    @property
    def before(self) -> Counter[str]:
        return sum((a.before for a in self.attempts), Counter())

    @property
    def after(self) -> Counter[str]:
        return sum((a.after for a in self.attempts), Counter())

    def totals(self) -> list[tuple[str, str, int, int, int]]:
        """(kind, label, before, after, after - before) for every kind."""
        labels = dict(Flag.Kind.choices)
        before, after = self.before, self.after
        return [(k, labels[k], before[k], after[k], after[k] - before[k]) for k in rules.CHECKS]

    @property
    def conflicts(self) -> list[Conflict]:
        return [c for a in self.attempts for c in a.conflicts]

    def summary(self) -> dict[str, Any]:
        """JSON for RescoreRun.summary: counts per attempt and kind, and the conflicts."""
        return {
            "attempts": {
                str(a.attempt_id): {
                    "before": dict(a.before),
                    "after": dict(a.after),
                    "created": a.created,
                    "updated": a.updated,
                    "withdrawn": a.withdrawn,
                    "restored": a.restored,
                    "purged_sessions": a.purged_sessions,
                }
                for a in self.attempts
            },
            "conflicts": [
                {"flag_id": c.flag_id, "kind": c.kind, "status": c.status, "reason": c.reason} for c in self.conflicts
            ],
        }


def _range(start: int, end: int | None) -> tuple[int, int]:
    return start, INF if end is None else end


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def _span_differs(flag: Flag, span: rules.FlagSpan) -> bool:
    return (
        flag.started_seq != span.started_seq
        or flag.ended_seq != span.ended_seq
        or abs(flag.confidence - span.confidence) > 1e-9
        or abs(flag.threshold - span.threshold) > 1e-9
    )


def _plan_session(
    plan: AttemptPlan, session_id: int, flags: list[Flag], spans: Iterable[rules.FlagSpan], withdrawn: set[int]
) -> None:
    reviewed = [f for f in flags if f.status in REVIEWED and f.pk not in withdrawn]
    open_live = [f for f in flags if f.status == Flag.Status.OPEN and f.pk not in withdrawn]
    open_withdrawn = [f for f in flags if f.status == Flag.Status.OPEN and f.pk in withdrawn]
    covered: set[int] = set()
    matched: set[int] = set()

    for span in spans:
        srange = _range(span.started_seq, span.ended_seq)
        hit = next(
            (f for f in reviewed if f.kind == span.kind and _overlaps(srange, _range(f.started_seq, f.ended_seq))),
            None,
        )
        if hit is not None:
            covered.add(hit.pk)
            continue
        for pool, op in ((open_live, "update"), (open_withdrawn, "restore")):
            hit = next(
                (
                    f
                    for f in pool
                    if f.pk not in matched
                    and f.kind == span.kind
                    and _overlaps(srange, _range(f.started_seq, f.ended_seq))
                ),
                None,
            )
            if hit is not None:
                matched.add(hit.pk)
                if op == "restore":
                    plan.restored += 1
                    plan.ops.append(_Op("restore", session_id, hit.pk, span))
                elif _span_differs(hit, span):
                    plan.updated += 1
                    plan.ops.append(_Op("update", session_id, hit.pk, span))
                plan.after[span.kind] += 1
                break
        else:
            plan.created += 1
            plan.ops.append(_Op("create", session_id, None, span))
            plan.after[span.kind] += 1

    for flag in reviewed:
        plan.after[flag.kind] += 1
        if flag.pk not in covered:
            plan.conflicts.append(
                Conflict(
                    flag_id=flag.pk,
                    kind=flag.kind,
                    status=flag.status,
                    started_at=flag.started_at,
                    reason=f"{flag.get_status_display()} by a reviewer, but the new settings would not raise it. "
                    "The decision is kept.",
                )
            )
    for flag in open_live:
        if flag.pk not in matched:
            plan.withdrawn += 1
            plan.ops.append(_Op("withdraw", session_id, flag.pk, kind=flag.kind))


def _plan(exam: Exam, config: Mapping[str, Any]) -> RescorePlan:
    rescore_settings(config=config)  # validate once up front, without accommodations
    accommodations = dict(Enrollment.objects.filter(exam=exam).values_list("student_id", "accommodations"))
    sessions = list(
        ProctoringSession.objects.filter(attempt__exam=exam)
        .select_related("attempt__student")
        .order_by("attempt__student__username", "attempt__number", "started_at", "id")
    )
    flags_by_session: dict[int, list[Flag]] = {}
    for flag in Flag.objects.filter(session__in=sessions).order_by("started_seq", "id"):
        flags_by_session.setdefault(flag.session_id, []).append(flag)
    withdrawn = set(FlagWithdrawal.objects.filter(flag__session__in=sessions).values_list("flag_id", flat=True))
    stored = dict(
        Observation.objects.filter(session__in=sessions)
        .values("session")
        .annotate(n=Count("id"))
        .values_list("session", "n")
    )

    plans: dict[int, AttemptPlan] = {}
    for session in sessions:
        attempt = session.attempt
        plan = plans.setdefault(attempt.pk, AttemptPlan(attempt_id=attempt.pk, student=str(attempt.student)))
        flags = flags_by_session.get(session.pk, [])
        for flag in flags:
            if flag.pk not in withdrawn:
                plan.before[flag.kind] += 1
        live = session.status == ProctoringSession.Status.ACTIVE
        if live or _observations_purged(session, stored.get(session.pk, 0)):
            if live:
                plan.live_sessions += 1
            else:
                plan.purged_sessions += 1
            for flag in flags:
                if flag.pk not in withdrawn:
                    plan.after[flag.kind] += 1
            continue
        settings = rescore_settings(config=config, accommodations=accommodations.get(attempt.student_id))
        records = frame_records_for_session(session=session)
        _plan_session(plan, session.pk, flags, rules.rescore(records, settings), withdrawn)
    return RescorePlan(
        exam_id=exam.pk,
        config_before=dict(exam.proctoring_settings or {}),
        config_after=dict(config),
        attempts=list(plans.values()),
    )


def _observations_purged(session: ProctoringSession, stored: int) -> bool:
    """Whether some or all of the session's observations are gone, so its frames can no longer be re-run.

    Told from the session's own counter rather than a "purged" mark: every analysed frame's Observation row is written
    in the same transaction that counts it in `frames_analysed`, while retention deletes rows in batches of their own,
    so a purge that stopped half-way leaves fewer rows than the counter, and no mark could say so reliably. A session
    with no observation at all has nothing to re-score either (older rows may predate the counter).
    """
    return stored == 0 or stored < session.frames_analysed


def rescore_preview(*, exam: Exam, config: Mapping[str, Any]) -> RescorePlan:
    """What applying `config` would change, per attempt and kind. Reads only; runs no model."""
    return _plan(exam, config)


def _at(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


def _model_version(session_id: int, seq: int) -> str:
    versions = Observation.objects.filter(session_id=session_id, seq=seq).values_list("model_versions", flat=True)
    value = next(iter(versions), None) or {}
    return model_version_of(dict(value)) if isinstance(value, Mapping) else str(value)


def rescore_apply(*, exam_id: int, actor: User, config: Mapping[str, Any]) -> tuple[RescoreRun, RescorePlan]:
    """Apply new settings to the exam and its ended sessions' flags, with an audit row for every flag touched.

    The exam row is locked for the whole run, so two instructors applying at once are serialised and the second
    plans against the first one's result. The exam's settings are saved too, so the next sitting uses them.
    """
    with transaction.atomic():
        exam = Exam.objects.select_for_update().filter(pk=exam_id).first()
        if exam is None or not user_can_review_exam(user=actor, exam=exam):
            raise ReviewError("You can only re-score your own exams.", code="forbidden")
        plan = _plan(exam, config)
        run = RescoreRun.objects.create(
            exam=exam,
            actor=actor,
            settings_before=plan.config_before,
            settings_after=plan.config_after,
            summary=plan.summary(),
        )
        attempt_of = dict(ProctoringSession.objects.filter(attempt__exam=exam).values_list("id", "attempt_id"))
        for attempt_plan in plan.attempts:
            for op in attempt_plan.ops:
                _execute(op, run=run, actor=actor, attempt_id=attempt_of[op.session_id])
        exam.proctoring_settings = plan.config_after
        exam.save(update_fields=["proctoring_settings", "updated_at"])
    return run, plan


def _flag_id(op: _Op) -> int:
    assert op.flag_id is not None, f"a {op.op} names its flag"
    return op.flag_id


def _execute(op: _Op, *, run: RescoreRun, actor: User, attempt_id: int) -> None:
    audit = {"actor": actor, "run": run, "attempt_id": attempt_id}
    if op.op == "withdraw":
        flag = Flag.objects.get(pk=_flag_id(op))
        FlagWithdrawal.objects.create(flag=flag, run=run)
        FlagDecision.objects.create(
            flag=flag,
            flag_ref=flag.pk,
            action=FlagDecision.Action.RESCORE_WITHDRAW,
            from_status=flag.status,
            to_status=flag.status,
            **audit,
        )
        return
    span = op.span
    assert span is not None
    values = {
        "started_at": _at(span.started_at),
        "ended_at": _at(span.ended_at),
        "started_seq": span.started_seq,
        "ended_seq": span.ended_seq,
        "confidence": span.confidence,
        "threshold": span.threshold,
    }
    if op.op == "create":
        flag = Flag.objects.create(
            session_id=op.session_id,
            kind=span.kind,
            model_version=_model_version(op.session_id, span.started_seq),
            details={**span.details, "rescored_by": run.pk},
            **values,
        )
        action = FlagDecision.Action.RESCORE_CREATE
    else:
        flag = Flag.objects.get(pk=_flag_id(op))
        for name, value in values.items():
            setattr(flag, name, value)
        flag.details = {**span.details, "rescored_by": run.pk, "live": flag.details.get("live", flag.details)}
        flag.save(update_fields=[*values, "details"])
        action = FlagDecision.Action.RESCORE_UPDATE
        if op.op == "restore":
            FlagWithdrawal.objects.filter(flag=flag).delete()
            action = FlagDecision.Action.RESCORE_RESTORE
    FlagDecision.objects.create(
        flag=flag, flag_ref=flag.pk, action=action, from_status=flag.status, to_status=flag.status, **audit
    )
