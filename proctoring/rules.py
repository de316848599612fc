"""Proctoring decisions, as pure functions: frame records and per-exam settings in, events and flag decisions out.

No Django and no models here. The live consumer runs `step()` on every analysed frame; the review pages (issue 5)
run `rescore()` over the stored observations with new settings, and get exactly what a live run with those settings
would have produced, because both go through the same `step()`.

Design choices, against what users complain about in proctoring products:
1. Flags come from patterns over time: a check must be positive in k of the last n frames where it was evaluated
   before a flag opens, and it closes after `clear_after` clean evaluations in a row.
2. Live events are guidance for the student, limited by a cooldown per event type (the prototype's 5 s), except the
   event that opens a flag, which is always sent (it carries the flag id).
3. Stalled streams, rejected frames and server errors never touch the windows: they are not evidence of anything
   the student did.
4. Accommodations can only relax checks (turn one off, widen a limit), never tighten them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from proctoring.frame_signals import in_order
from proctoring.vision.types import Observation

FACE_NOT_FOUND = "face_not_found"
MULTIPLE_FACES = "multiple_faces"
IDENTITY_MISMATCH = "identity_mismatch"
PHONE_DETECTED = "phone_detected"
LOOKING_AWAY = "looking_away"
CHECKS: tuple[str, ...] = (FACE_NOT_FOUND, MULTIPLE_FACES, IDENTITY_MISMATCH, PHONE_DETECTED, LOOKING_AWAY)

EVENT_FOR_CHECK = {
    FACE_NOT_FOUND: "FACE_NOT_FOUND",
    MULTIPLE_FACES: "MULTIPLE_FACES",
    IDENTITY_MISMATCH: "IDENTITY_MISMATCH",
    PHONE_DETECTED: "PHONE_DETECTED",
    LOOKING_AWAY: "LOOKING_AWAY",
}

# Calm, specific guidance for the student. Never accusatory: most of these have innocent causes.
MESSAGES: dict[str, str] = {
    "AUTHORIZED": "Thanks, we can see you clearly.",
    "FACE_NOT_FOUND": "We can't see your face. Check your lighting and that you are in front of the camera.",
    "MULTIPLE_FACES": "We can see more than one face. Please make sure you are on your own.",
    "IDENTITY_MISMATCH": "We couldn't confirm it's you. Face the camera in good light.",
    "PHONE_DETECTED": "It looks like a phone is in view. Please put it out of sight.",
    "LOOKING_AWAY": "Please keep your eyes on the exam screen.",
    "STREAM_STALLED": "Your camera stream has paused. We'll carry on when it's back; this is not counted against you.",
    "FRAME_REJECTED": "We couldn't read one camera frame. Nothing is counted against you.",
    "OVERLOADED": "The server is busy, so one frame was skipped. Nothing is counted against you.",
    "ERROR": "Something went wrong on our side. Nothing is counted against you.",
}

ATTENTION_FOCUSED = 70
ATTENTION_DISTRACTED = 40


def attention_label(score: float) -> str:
    if score >= ATTENTION_FOCUSED:
        return "Focused"
    if score >= ATTENTION_DISTRACTED:
        return "Distracted"
    return "Away"


@dataclass(frozen=True)
class RuleSettings:
    """Per-exam proctoring settings with safe defaults; read from Exam.proctoring_settings and the enrollment's
    accommodations by `from_config`. Absent keys take the defaults, so old exams keep working as checks are added."""

    checks: frozenset[str] = frozenset(CHECKS)
    # k positive evaluations among the last n open a flag; `clear_after` clean ones in a row close it.
    k: int = 3
    n: int = 5
    clear_after: int = 3
    # Seconds between two events of the same type (the prototype's 5 s); per-event overrides in `cooldowns`.
    cooldown_s: float = 5.0
    cooldowns: Mapping[str, float] = field(default_factory=dict)
    # Head pose limits (degrees, relative to the student's neutral pose) and gaze limit when the pack has gaze.
    yaw_limit: float = 30.0
    pitch_limit: float = 25.0
    gaze_limit: float = 20.0
    # Gaze counts towards looking away and attention; an accommodation ({"gaze": false}) leaves it out for one
    # student (a visually impaired student's eyes may not point where they look), and head pose still counts.
    use_gaze: bool = True
    phone_threshold: float = 0.5
    # None: use the embedding model's own calibrated threshold, stored with each observation.
    identity_threshold: float | None = None
    # Check identity on every Nth analysed frame (it costs an embedding); every frame while a mismatch is open.
    identity_every: int = 1
    # Skip rule: the object detector's result may be re-used for up to this many frames in a row while the picture
    # has not changed since it was measured (proctoring.vision.change); 0 runs it on every frame.
    object_reuse_frames: int = 2
    frame_interval_ms: int = 2000
    # No frame for this many intervals: STREAM_STALLED (recorded, never a flag).
    stall_after: int = 3
    max_frame_bytes: int = 1_000_000
    objects: frozenset[str] = frozenset({"cell phone"})
    # End the session after this many confirmed violations. 0 (the default) is off: a human decides.
    end_after_confirmed: int = 0

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any] | None = None, accommodations: Mapping[str, Any] | None = None
    ) -> RuleSettings:
        """Build settings from an exam's JSON and a student's accommodations. Raises ValueError on a bad value,
        naming the key, so an instructor's typo is a clear error instead of a silently different exam."""
        config = dict(config or {})
        accommodations = dict(accommodations or {})
        defaults = cls()
        values: dict[str, Any] = {}

        checks = set(defaults.checks)
        raw_checks = config.get("checks")
        if isinstance(raw_checks, Mapping):
            for name, on in raw_checks.items():
                _known_check(name)
                (checks.add if _as_bool(f"checks.{name}", on) else checks.discard)(name)
        elif raw_checks is not None:
            if not isinstance(raw_checks, list | tuple):
                raise ValueError("checks must be a list of check names or an object of check: true/false")
            checks = {_known_check(name) for name in raw_checks}

        for name in (
            "k",
            "n",
            "clear_after",
            "identity_every",
            "object_reuse_frames",
            "frame_interval_ms",
            "stall_after",
            "max_frame_bytes",
            "end_after_confirmed",
        ):
            if name in config:
                values[name] = _as_int(
                    name, config[name], minimum=0 if name in ("end_after_confirmed", "object_reuse_frames") else 1
                )
        for name in ("cooldown_s", "yaw_limit", "pitch_limit", "gaze_limit", "phone_threshold"):
            if name in config:
                values[name] = _as_float(name, config[name])
        if config.get("identity_threshold") is not None:
            values["identity_threshold"] = _as_float("identity_threshold", config["identity_threshold"])
        if "cooldowns" in config:
            if not isinstance(config["cooldowns"], Mapping):
                raise ValueError("cooldowns must be an object of EVENT: seconds")
            values["cooldowns"] = {str(k): _as_float(f"cooldowns.{k}", v) for k, v in config["cooldowns"].items()}
        if "objects" in config:
            labels = config["objects"]
            if not isinstance(labels, list | tuple) or not all(isinstance(o, str) for o in labels):
                raise ValueError("objects must be a list of COCO labels")
            values["objects"] = frozenset(config["objects"]) | {"cell phone"}

        # Accommodations only relax: a check turned off ({"looking_away": false} for a visually impaired student),
        # or a wider pose limit. Anything else in the accommodations JSON belongs to other features (extra time).
        acc_checks = accommodations.get("checks", {})
        if isinstance(acc_checks, Mapping):
            for name, on in acc_checks.items():
                if name in CHECKS and not _as_bool(f"accommodations.checks.{name}", on):
                    checks.discard(name)
        for name in CHECKS:
            if name in accommodations and not _as_bool(f"accommodations.{name}", accommodations[name]):
                checks.discard(name)
        if "gaze" in accommodations and not _as_bool("accommodations.gaze", accommodations["gaze"]):
            values["use_gaze"] = False
        for name in ("yaw_limit", "pitch_limit", "gaze_limit"):
            if name in accommodations:
                wider = _as_float(f"accommodations.{name}", accommodations[name])
                values[name] = max(values.get(name, getattr(defaults, name)), wider)

        settings = cls(checks=frozenset(checks), **values)
        if settings.k > settings.n:
            raise ValueError(f"k ({settings.k}) cannot be larger than n ({settings.n})")
        if not 0.0 < settings.phone_threshold <= 1.0:
            raise ValueError("phone_threshold must be in (0, 1]")
        return settings

    def cooldown_for(self, event: str) -> float:
        return float(self.cooldowns.get(event, self.cooldown_s))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["checks"] = sorted(self.checks)
        data["objects"] = sorted(self.objects)
        data["cooldowns"] = dict(self.cooldowns)
        return data

    @classmethod
    def from_config_or_default(cls, config: Mapping[str, Any] | None) -> RuleSettings:
        """from_config, or the defaults when the stored config no longer validates (the forms then show, and save,
        valid values)."""
        try:
            return cls.from_config(config)
        except ValueError:
            return cls()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuleSettings:
        """Inverse of to_dict (a stored settings snapshot); unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        for name in ("checks", "objects"):
            if name in values:
                values[name] = frozenset(values[name])
        return cls(**values)


def _known_check(name: Any) -> str:
    if name not in CHECKS:
        raise ValueError(f"unknown check {name!r}; known checks: {', '.join(CHECKS)}")
    return str(name)


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"{name} must be true or false, not {value!r}")


def _as_int(name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, not {value!r}")
    return value


def _as_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name} must be a non-negative number, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class FrameRecord:
    """One analysed frame, compactly: the raw measurements every check needs, never the decision. Stored per frame
    (proctoring.models.Observation) so that new thresholds can be applied later without the models."""

    seq: int
    at: float  # seconds since the epoch, when the frame was received
    face_count: int
    face_scores: tuple[float, ...] = ()
    identity_checked: bool = False
    similarity: float | None = None
    identity_threshold: float | None = None
    identity_error: str | None = None
    yaw: float | None = None  # relative to the student's neutral pose
    pitch: float | None = None
    gaze_yaw: float | None = None
    gaze_pitch: float | None = None
    phone_score: float = 0.0
    objects: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_observation(
        cls,
        obs: Observation,
        *,
        seq: int,
        at: float,
        phone_label: str = "cell phone",
    ) -> FrameRecord:
        """The record of one analysed frame. Its pose and gaze are already relative to the student's neutral pose:
        the analyzer makes them so, once, with the enrolment the frame job carries."""
        yaw = obs.pose.yaw if obs.pose is not None else None
        pitch = obs.pose.pitch if obs.pose is not None else None
        gaze_yaw = obs.gaze.yaw if obs.gaze is not None else None
        gaze_pitch = obs.gaze.pitch if obs.gaze is not None else None
        phone = 0.0
        others: dict[str, float] = {}
        for item in obs.objects:
            if item.label == phone_label:
                phone = max(phone, float(item.score))
            else:
                others[item.label] = round(max(others.get(item.label, 0.0), float(item.score)), 4)
        faces = sorted(obs.faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), reverse=True)
        return cls(
            seq=seq,
            at=at,
            face_count=obs.face_count,
            face_scores=tuple(round(float(f.score), 4) for f in faces[:8]),
            identity_checked=obs.identity is not None,
            similarity=round(float(obs.identity.similarity), 4) if obs.identity is not None else None,
            identity_threshold=float(obs.identity.threshold) if obs.identity is not None else None,
            identity_error=obs.identity_error,
            yaw=_round(yaw),
            pitch=_round(pitch),
            gaze_yaw=_round(gaze_yaw),
            gaze_pitch=_round(gaze_pitch),
            phone_score=round(phone, 4),
            objects=others,
        )


def _round(value: float | None) -> float | None:
    return round(float(value), 2) if value is not None else None


@dataclass
class RuleState:
    """The running state of one session, JSON-serialisable (ProctoringSession.state) so a reconnect resumes it."""

    frames: int = 0
    windows: dict[str, list[int]] = field(default_factory=dict)
    strengths: dict[str, list[float]] = field(default_factory=dict)
    clear_runs: dict[str, int] = field(default_factory=dict)
    # kind -> {"seq": started seq, "at": started at}
    open_flags: dict[str, dict[str, float]] = field(default_factory=dict)
    last_sent: dict[str, float] = field(default_factory=dict)
    attention: list[int] = field(default_factory=list)
    last_identity_mismatch: bool = False
    server_errors: int = 0
    last_frame_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        # Spelled out rather than dataclasses.asdict(): asdict deep-copies recursively and was most of the cost of
        # a frame. Every container here is one level of dicts of lists or of flat dicts, so these copies are full.
        return {
            "frames": self.frames,
            "windows": {k: list(v) for k, v in self.windows.items()},
            "strengths": {k: list(v) for k, v in self.strengths.items()},
            "clear_runs": dict(self.clear_runs),
            "open_flags": {k: dict(v) for k, v in self.open_flags.items()},
            "last_sent": dict(self.last_sent),
            "attention": list(self.attention),
            "last_identity_mismatch": self.last_identity_mismatch,
            "server_errors": self.server_errors,
            "last_frame_at": self.last_frame_at,
        }

    def copy(self) -> RuleState:
        """An independent copy, cheaply (no deepcopy): what `step()` works on so the caller's state stays intact."""
        return RuleState(**self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RuleState:
        """From stored JSON (ProctoringSession.state). Deep-copied: runs once per frame at most, on data of any shape
        the database held."""
        names = {f.name for f in fields(cls)}
        return cls(**copy.deepcopy({k: v for k, v in (data or {}).items() if k in names}))


@dataclass(frozen=True)
class FlagOpen:
    kind: str
    seq: int
    at: float
    confidence: float
    threshold: float
    details: dict[str, Any]


@dataclass(frozen=True)
class FlagClose:
    kind: str
    seq: int
    at: float
    # "clear": clean frames in a row; "unknown": the frames could no longer tell (for an identity flag, nobody or
    # several people on camera), so the span ends at the last frame where its condition was seen.
    reason: str = "clear"


@dataclass(frozen=True)
class Decision:
    state: RuleState
    signals: tuple[str, ...] = ()
    # Events to send, in order; an event whose check opened a flag has "check" set so the caller can attach flag_id.
    events: tuple[dict[str, Any], ...] = ()
    opens: tuple[FlagOpen, ...] = ()
    closes: tuple[FlagClose, ...] = ()
    attention: int | None = None
    frame_attention: int | None = None
    label: str | None = None


def identity_due(state: RuleState, settings: RuleSettings) -> bool:
    """Whether the next frame should be analysed with the enrolled face (identity check)."""
    if IDENTITY_MISMATCH not in settings.checks:
        return False
    if state.last_identity_mismatch or IDENTITY_MISMATCH in state.open_flags:
        return True
    return state.frames % max(1, settings.identity_every) == 0


def pose_deviation(record: FrameRecord, settings: RuleSettings) -> float | None:
    """How far the head (and eyes, when known) turn, as a multiple of the limit: 1.0 is exactly at the limit."""
    if record.yaw is None or record.pitch is None:
        return None
    dev = max(abs(record.yaw) / max(settings.yaw_limit, 1e-6), abs(record.pitch) / max(settings.pitch_limit, 1e-6))
    if settings.use_gaze and record.gaze_yaw is not None and record.gaze_pitch is not None:
        gaze = max(abs(record.gaze_yaw), abs(record.gaze_pitch)) / max(settings.gaze_limit, 1e-6)
        dev = max(dev, gaze)
    return dev


def _identity_threshold(record: FrameRecord, settings: RuleSettings) -> float | None:
    return settings.identity_threshold if settings.identity_threshold is not None else record.identity_threshold


def evaluate(record: FrameRecord, settings: RuleSettings) -> dict[str, tuple[bool, float]]:
    """Single-frame checks: {check: (positive, strength in [0, 1])} for the checks this frame can evaluate.

    A check that cannot be judged on this frame (identity with no face or two faces, pose with no face, a disabled
    check) is absent, and leaves its window untouched.
    """
    out: dict[str, tuple[bool, float]] = {}
    on = settings.checks
    if FACE_NOT_FOUND in on:
        out[FACE_NOT_FOUND] = (record.face_count == 0, 1.0)
    if MULTIPLE_FACES in on:
        second = record.face_scores[1] if len(record.face_scores) > 1 else 1.0
        out[MULTIPLE_FACES] = (record.face_count >= 2, float(second))
    threshold = _identity_threshold(record, settings)
    if (
        IDENTITY_MISMATCH in on
        and record.face_count == 1
        and record.identity_checked
        and record.similarity is not None
        and threshold is not None
        and not record.identity_error
    ):
        gap = (threshold - record.similarity) / max(threshold, 1e-6)
        out[IDENTITY_MISMATCH] = (record.similarity < threshold, _clamp(gap))
    if PHONE_DETECTED in on:
        out[PHONE_DETECTED] = (record.phone_score >= settings.phone_threshold, float(record.phone_score))
    dev = pose_deviation(record, settings)
    if LOOKING_AWAY in on and record.face_count == 1 and dev is not None:
        out[LOOKING_AWAY] = (dev > 1.0, _clamp(dev / 2.0))
    return out


def frame_attention(record: FrameRecord, settings: RuleSettings) -> int:
    """Attention of one frame, 0-100: absence 0; head pose (and gaze) relative to the neutral pose; a phone caps it.

    Pose within half the limit is full attention; at the limit 55 (Distracted); at 1.5x the limit and beyond, 10.
    Pose and gaze are left out for a student whose looking-away check is off (accommodation).
    """
    if record.face_count == 0:
        return 0
    score = 100.0
    dev = pose_deviation(record, settings)
    if LOOKING_AWAY in settings.checks and dev is not None and dev > 0.5:
        score = max(10.0, 100.0 - 90.0 * (dev - 0.5))
    if PHONE_DETECTED in settings.checks and record.phone_score >= settings.phone_threshold:
        score = min(score, 30.0)
    return int(round(score))


def _clamp(value: float) -> float:
    return max(0.0, min(1.0, float(value)))


def _threshold_for(kind: str, record: FrameRecord, settings: RuleSettings) -> float:
    if kind == PHONE_DETECTED:
        return settings.phone_threshold
    if kind == IDENTITY_MISMATCH:
        return float(_identity_threshold(record, settings) or 0.0)
    if kind == LOOKING_AWAY:
        return settings.yaw_limit
    # Presence checks have no score threshold: the k-of-n ratio is what was applied.
    return round(settings.k / settings.n, 4)


def _cooled(state: RuleState, event: str, at: float, settings: RuleSettings) -> bool:
    last = state.last_sent.get(event)
    return last is None or at - last >= settings.cooldown_for(event)


def step(state: RuleState, record: FrameRecord, settings: RuleSettings) -> Decision:
    """Apply one analysed frame. Returns a new state; the given one is not modified."""
    return _advance(state.copy(), record, settings)


def _advance(state: RuleState, record: FrameRecord, settings: RuleSettings) -> Decision:
    """`step()` on a state it may modify: the returned Decision holds the same, updated, state object.

    `rescore()` runs this on one working state over thousands of frames; copying the state every frame was ~90% of
    its time."""
    state.frames += 1
    state.last_frame_at = record.at

    checks = evaluate(record, settings)
    if IDENTITY_MISMATCH in checks:
        state.last_identity_mismatch = checks[IDENTITY_MISMATCH][0]

    opens: list[FlagOpen] = []
    closes: list[FlagClose] = []
    # An open flag whose check this frame cannot evaluate (an identity mismatch while nobody, or several people,
    # are on camera; looking away without a face): after `clear_after` such frames in a row the frames can no
    # longer tell, and the flag ends at the last frame where its condition was seen. Left open, a mismatch read
    # "0:38 to 2:19, 100 s" when the other person was on camera for about 25 s.
    for kind in [k for k in state.open_flags if k not in checks]:
        flag = state.open_flags[kind]
        flag["unknown"] = flag.get("unknown", 0) + 1
        if flag["unknown"] >= settings.clear_after:
            del state.open_flags[kind]
            state.clear_runs[kind] = 0
            state.windows.get(kind, []).clear()
            state.strengths.get(kind, []).clear()
            last_seq, last_at = int(flag.get("last_seq", flag["seq"])), float(flag.get("last_at", flag["at"]))
            closes.append(FlagClose(kind=kind, seq=last_seq, at=last_at, reason="unknown"))
    for kind, (positive, strength) in checks.items():
        window = state.windows.setdefault(kind, [])
        strengths = state.strengths.setdefault(kind, [])
        window.append(1 if positive else 0)
        strengths.append(round(strength if positive else 0.0, 4))
        del window[: -settings.n]
        del strengths[: -settings.n]
        if kind in state.open_flags:
            flag = state.open_flags[kind]
            flag["unknown"] = 0
            if positive:
                flag["last_seq"], flag["last_at"] = record.seq, record.at
            state.clear_runs[kind] = 0 if positive else state.clear_runs.get(kind, 0) + 1
            if state.clear_runs[kind] >= settings.clear_after:
                del state.open_flags[kind]
                state.clear_runs[kind] = 0
                # A fresh window, so a closed flag needs k new positives to open again.
                window.clear()
                strengths.clear()
                closes.append(FlagClose(kind=kind, seq=record.seq, at=record.at))
        elif positive and sum(window) >= settings.k:
            hits = [s for w, s in zip(window, strengths, strict=True) if w]
            confidence = round(sum(hits) / len(hits), 4)
            state.open_flags[kind] = {"seq": record.seq, "at": record.at, "last_seq": record.seq, "last_at": record.at}
            state.clear_runs[kind] = 0
            opens.append(
                FlagOpen(
                    kind=kind,
                    seq=record.seq,
                    at=record.at,
                    confidence=confidence,
                    threshold=_threshold_for(kind, record, settings),
                    details={
                        "k": settings.k,
                        "n": settings.n,
                        "window": list(window),
                        "strengths": list(strengths),
                        "frame": _frame_values(kind, record),
                    },
                )
            )

    signals = _signals(record, checks)
    fa = frame_attention(record, settings)
    state.attention.append(fa)
    del state.attention[: -settings.n]
    attention = int(round(sum(state.attention) / len(state.attention)))
    label = attention_label(attention)

    opened = {o.kind for o in opens}
    events: list[dict[str, Any]] = []
    for signal in signals:
        check = signal.lower() if signal != "AUTHORIZED" else None
        if check in opened or _cooled(state, signal, record.at, settings):
            state.last_sent[signal] = record.at
            event: dict[str, Any] = {"event": signal, "message": MESSAGES[signal]}
            if signal == "MULTIPLE_FACES":
                event["count"] = record.face_count
            elif signal == "LOOKING_AWAY":
                event["score"] = fa
            elif signal == "IDENTITY_MISMATCH":
                event["similarity"] = record.similarity
            if check in opened:
                event["check"] = check
            events.append(event)
    events.append({"event": "ATTENTION_UPDATE", "score": attention, "label": label})

    return Decision(
        state=state,
        signals=signals,
        events=tuple(events),
        opens=tuple(opens),
        closes=tuple(closes),
        attention=attention,
        frame_attention=fa,
        label=label,
    )


def _signals(record: FrameRecord, checks: Mapping[str, tuple[bool, float]]) -> tuple[str, ...]:
    """Single-frame signals, in the order frame_signals.in_order gives, of what this exam's checks found. AUTHORIZED
    only on a frame whose identity was checked and matched; a check the exam leaves out says nothing."""

    def found(kind: str) -> bool:
        return checks.get(kind, (False,))[0]

    return tuple(
        in_order(
            faces=0 if found(FACE_NOT_FOUND) else 2 if found(MULTIPLE_FACES) else 1,
            identity=(not found(IDENTITY_MISMATCH)) if IDENTITY_MISMATCH in checks else None,
            phone=found(PHONE_DETECTED),
            away=found(LOOKING_AWAY),
        )
    )


def _frame_values(kind: str, record: FrameRecord) -> dict[str, Any]:
    if kind == IDENTITY_MISMATCH:
        return {"similarity": record.similarity, "threshold": record.identity_threshold}
    if kind == PHONE_DETECTED:
        return {"phone_score": record.phone_score}
    if kind == LOOKING_AWAY:
        return {"yaw": record.yaw, "pitch": record.pitch, "gaze_yaw": record.gaze_yaw, "gaze_pitch": record.gaze_pitch}
    return {"face_count": record.face_count}


def server_problem(state: RuleState, *, at: float, event: str, settings: RuleSettings) -> Decision:
    """A frame the server could not judge (worker error or timeout: ERROR; shed under load: OVERLOADED; unreadable
    frame: FRAME_REJECTED). Counted for operations, never against the student: no window moves."""
    state = state.copy()
    if event != "FRAME_REJECTED":
        state.server_errors += 1
    events: tuple[dict[str, Any], ...] = ()
    # FRAME_REJECTED is always answered (the client needs to know why); the others respect the cooldown so an
    # overloaded server does not flood the student with apologies.
    if event == "FRAME_REJECTED" or _cooled(state, event, at, settings):
        state.last_sent[event] = at
        events = ({"event": event, "message": MESSAGES[event]},)
    return Decision(state=state, events=events)


def stall_due(
    *, last_frame_at: float | None, now: float, settings: RuleSettings, interval_ms: int | None = None
) -> bool:
    """No frame has arrived for `stall_after` frame intervals: the stream is stalled (reported, never a flag).

    The consumer calls it with the time the last frame was received (or the connection opened), and reports a stall
    once until frames come back. `interval_ms` is the interval the client was told (PACE, under load), when it
    differs from the exam's: a student the server slowed down is never "stalled" for obeying.
    """
    if last_frame_at is None:
        return False
    interval = max(interval_ms or 0, settings.frame_interval_ms)
    return now - last_frame_at >= settings.stall_after * interval / 1000.0


def end_due(*, confirmed: int, settings: RuleSettings) -> bool:
    """Whether the exam's policy ends the session: only when the exam asks for it, and only on human-confirmed flags."""
    return settings.end_after_confirmed > 0 and confirmed >= settings.end_after_confirmed


@dataclass(frozen=True)
class FlagSpan:
    kind: str
    started_seq: int
    started_at: float
    ended_seq: int | None
    ended_at: float | None
    confidence: float
    threshold: float
    details: dict[str, Any]


def rescore(records: Iterable[FrameRecord], settings: RuleSettings) -> list[FlagSpan]:
    """Re-run the rules over stored frame records (in seq order) and return the flags they produce.

    Deterministic: no clock and no randomness; the same records and settings always give the same spans.
    """
    # One working state, advanced in place: nothing outside this function sees the intermediate states.
    state = RuleState()
    spans: dict[str, FlagSpan] = {}
    done: list[FlagSpan] = []
    for record in sorted(records, key=lambda r: r.seq):
        decision = _advance(state, record, settings)
        for close in decision.closes:
            done.append(replace(spans.pop(close.kind), ended_seq=close.seq, ended_at=close.at))
        for opened in decision.opens:
            spans[opened.kind] = FlagSpan(
                kind=opened.kind,
                started_seq=opened.seq,
                started_at=opened.at,
                ended_seq=None,
                ended_at=None,
                confidence=opened.confidence,
                threshold=opened.threshold,
                details=opened.details,
            )
    done.extend(spans.values())
    return sorted(done, key=lambda s: (s.started_seq, s.kind))
