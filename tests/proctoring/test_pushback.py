"""Overload degrades gently (issue 8): the server tells clients a longer frame interval (PACE) while the workers
cannot keep up and restores the exam's own when load falls; the local pool sheds the most recently served
session's frame, never the starving one's; a frame that merely waited never makes the pool kill a healthy worker.

The consumer half runs through the real ASGI stack with a fake slow pool (wiring); the pool half runs real spawned
worker processes with the scripted analyzer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid

import pytest

from proctoring.pool.base import EXPIRED, OK, TIMEOUT, AnalysisResult, FrameJob, InferencePool, ObjectsMemory
from proctoring.pool.local import MAX_GAP_S, PROTECTED_ANSWER_S, WAIT_BUDGET_S, LocalPool, _Entry
from proctoring.rules import RuleSettings, stall_due
from tests.factories import StudentFactory
from tests.proctoring.fakes import frame
from tests.proctoring.test_consumer import (  # noqa: F401 - inline_pool is an autouse fixture
    InlinePool,
    db,
    inline_pool,
    join,
    show,
    sitting,
    until,
)

SCRIPTED = "tests.proctoring.fakes:scripted_analyzer"


class FixedCapacity(InferencePool):
    """A pool whose workers analyse `capacity` frames a second: the push-back arithmetic alone."""

    name = "fixed"
    CONGESTED_FOR_S = 0.0

    def __init__(self, capacity: float | None, *, frames_waiting: bool = True) -> None:
        super().__init__(timeout_s=1.0)
        self.capacity = capacity
        self.frames_waiting = frames_waiting

    def capacity_fps(self) -> float | None:
        return self.capacity

    def _congested(self, now: float) -> bool:
        return self.frames_waiting or super()._congested(now)

    async def _submit(self, job, reply_channel):  # pragma: no cover - never called here
        raise AssertionError


def students(pool: InferencePool, n: int, interval_ms: int = 2000) -> None:
    for i in range(n):
        pool.join(f"student-{i}", interval_ms=interval_ms)


# --- The interval the server asks for -----------------------------------------------------------------------------


def test_it_keeps_the_exams_own_interval_while_the_workers_keep_up():
    pool = FixedCapacity(capacity=100.0)
    students(pool, 150)  # 75 frames/s against 80 usable
    assert pool.pace_interval_ms(2000) == 2000


def test_it_slows_every_student_just_enough_when_the_workers_cannot_keep_up():
    pool = FixedCapacity(capacity=40.0)
    students(pool, 100)  # 50 frames/s against 32 usable: x1.56, rounded up to half seconds
    assert pool.pace_interval_ms(2000) == 3500


def test_it_slows_nobody_on_the_estimate_alone_while_no_frame_waits():
    pool = FixedCapacity(capacity=40.0, frames_waiting=False)  # e.g. times inflated while a room connects
    students(pool, 100)
    assert pool.pace_interval_ms(2000) == 2000
    pool.frames_waiting = True
    assert pool.pace_interval_ms(2000) == 3500


def test_a_burst_of_waiting_frames_is_not_an_overload_until_it_lasts(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    pool = FixedCapacity(capacity=40.0)
    pool.CONGESTED_FOR_S = 3.0
    students(pool, 100)
    assert pool.pace_interval_ms(2000) == 2000  # frames wait: the room just connected
    clock[0] += 2.0
    pool.frames_waiting = False
    assert pool.pace_interval_ms(2000) == 2000  # and it passed
    pool.frames_waiting = True
    pool.pace_interval_ms(2000)
    clock[0] += 3.0
    assert pool.pace_interval_ms(2000) == 3500  # 3 s of waiting frames: an overload


def test_a_student_joining_a_room_past_capacity_slows_it_at_once_before_frames_pile_up():
    pool = FixedCapacity(capacity=100.0, frames_waiting=False)
    students(pool, 180)  # 90 frames/s: past the comfortable 80, within capacity: no reason yet
    assert pool.pace_interval_ms(2000, joining=True) == 2000
    students(pool, 210)  # 105 frames/s: past the estimate, but within its spread (JOIN_PAST_CAPACITY)
    assert pool.pace_interval_ms(2000, joining=True) == 2000
    students(pool, 240)  # 120 frames/s: clearly more than the workers can analyse at all
    assert pool.pace_interval_ms(2000) == 2000  # a frame's answer waits for evidence...
    assert pool.pace_interval_ms(2000, joining=True) == 3000  # ...a join does not: x1.5, in half seconds


def test_it_never_asks_for_more_than_five_seconds():
    pool = FixedCapacity(capacity=5.0)
    students(pool, 1000)
    assert pool.pace_interval_ms(2000) == 5000
    assert pool.pace_interval_ms(5000) == 5000  # an exam that already asks for 5 s is never slowed further


def test_a_small_rise_in_demand_does_not_repace_everyone():
    pool = FixedCapacity(capacity=40.0)
    students(pool, 80)  # 40 frames/s against 32 usable: x1.25
    assert pool.pace_interval_ms(2000) == 2500
    students(pool, 84)  # 42 frames/s: x1.31, within the dead band
    assert pool.pace_interval_ms(2000) == 2500


def test_it_restores_the_exams_interval_when_load_falls_but_not_at_the_first_quiet_moment(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    pool = FixedCapacity(capacity=40.0)
    students(pool, 100)
    assert pool.pace_interval_ms(2000) == 3500
    for i in range(60):
        pool.leave(f"student-{i}")
    clock[0] += 1.0
    assert pool.pace_interval_ms(2000) == 3500  # hysteresis: no new interval every frame
    clock[0] += 10.0
    assert pool.pace_interval_ms(2000) == 2000


def test_a_room_that_keeps_needing_a_slower_pace_is_not_eased_every_ten_seconds(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    pool = FixedCapacity(capacity=40.0)
    students(pool, 100)  # x1.56
    assert pool.pace_interval_ms(2000) == 3500
    pool.capacity = 80.0  # the estimate swings up: x0.78, and nothing waits
    pool.frames_waiting = False
    clock[0] += 10.0
    assert pool.pace_interval_ms(2000) == 2000  # the first easing takes 10 s
    pool.capacity, pool.frames_waiting = 40.0, True  # and swings back: paced again
    clock[0] += 1.0
    assert pool.pace_interval_ms(2000) == 3500
    pool.capacity, pool.frames_waiting = 80.0, False
    clock[0] += 10.0
    assert pool.pace_interval_ms(2000) == 3500  # eased recently: this time it holds 30 s
    clock[0] += 20.0
    assert pool.pace_interval_ms(2000) == 2000


def test_a_room_paced_a_little_by_its_connect_burst_returns_to_the_exams_interval(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    pool = FixedCapacity(capacity=85.0)  # measured low while the room connects
    students(pool, 150)  # 75 frames/s: x1.10
    assert pool.pace_interval_ms(2000) == 2500
    pool.capacity, pool.frames_waiting = 97.0, False  # 0.97 of 80% of 97: the workers can take the room at 2 s
    clock[0] += 6.0
    assert pool.pace_interval_ms(2000) == 2500  # calm for 6 s only
    clock[0] += 5.0
    assert pool.pace_interval_ms(2000) == 2000  # calm for 11 s, and the workers can take the room at 2 s
    # The estimate flattered: frames wait again, and the room is paced again.
    pool.frames_waiting = True
    clock[0] += 1.0
    assert pool.pace_interval_ms(2000) == 2500
    pool.frames_waiting = False
    clock[0] += 25.0
    assert pool.pace_interval_ms(2000) == 2500  # the next release waits for more calm
    clock[0] += 6.0
    assert pool.pace_interval_ms(2000) == 2000


def test_easing_releases_a_room_the_workers_nearly_take_instead_of_keeping_it_a_hair_slower(monkeypatch):
    """A factor a hair above 1.0 is still a 2.5 s interval: easing to it held 200 students at 2.5 s for 51 s
    (s25_zen5_stretch). Under 1.1 the room is released, as a probe: frames waiting soon after send it back."""
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    pool = FixedCapacity(capacity=90.0)
    students(pool, 200)  # 100 frames/s: x1.39
    assert pool.pace_interval_ms(2000) == 3000
    pool.capacity, pool.frames_waiting = 124.5, False  # 100 / (124.5 x 0.8) = 1.004: under 0.8 of the pace
    clock[0] += 10.0
    assert pool.pace_interval_ms(2000) == 2000
    pool.frames_waiting = True  # the release was too much: back to where it came from, at least
    clock[0] += 5.0
    assert pool.pace_interval_ms(2000) == 3000
    # Eased to a factor over 1.1, the room keeps that pace.
    pool = FixedCapacity(capacity=60.0)
    students(pool, 200)  # x2.08
    assert pool.pace_interval_ms(2000) == 4500
    pool.capacity, pool.frames_waiting = 100.0, False  # x1.25, under 0.8 of the pace
    clock[0] += 10.0
    assert pool.pace_interval_ms(2000) == 2500


def test_a_room_the_estimate_flatters_is_told_a_new_interval_a_handful_of_times_not_every_half_minute(monkeypatch):
    """Every release near capacity fails here (frames wait as soon as the room is at 2 s): each failure doubles the
    calm the next release waits for, so ten minutes see a dozen changes of pace, where a fixed hold gave 40."""
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    pool = FixedCapacity(capacity=85.0)  # measured low while the room connects: paced
    students(pool, 150)
    intervals = [pool.pace_interval_ms(2000)]
    pool.capacity = 95.0  # 75 frames/s is 0.99 of 80% of it, by the estimate
    for _ in range(600):
        interval = pool.pace_interval_ms(2000)
        pool.frames_waiting = interval == 2000  # the room at its own interval is more than the workers manage
        if not intervals or intervals[-1] != interval:
            intervals.append(interval)
        clock[0] += 1.0
    assert intervals[0] == 2500 and 2000 in intervals
    assert len(intervals) <= 14, intervals


def test_it_stays_paced_while_frames_still_wait_even_if_the_estimate_says_it_could_cope(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    pool = FixedCapacity(capacity=85.0)
    students(pool, 150)
    assert pool.pace_interval_ms(2000) == 2500
    pool.capacity = 105.0  # 0.89 of 80%: it could cope, but frames_waiting stays True
    clock[0] += 11.0
    assert pool.pace_interval_ms(2000) == 2500


def test_without_a_known_capacity_it_follows_the_sheds(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    pool = FixedCapacity(capacity=None)  # Celery: the workers are elsewhere
    students(pool, 10)
    assert pool.pace_interval_ms(2000) == 2000
    pool._observe(AnalysisResult(job_id="j", status=EXPIRED, reason="stale"))
    clock[0] += 6.0
    assert pool.pace_interval_ms(2000) == 2500
    clock[0] += 25.0  # 20 s without a shed: a step back down
    assert pool.pace_interval_ms(2000) == 2000


def test_without_a_known_capacity_sheds_pace_the_room_to_what_the_workers_answered(monkeypatch):
    """While frames are shed the workers are saturated: the answers of the last 10 s are what they can do, and the
    room is paced to that at once (a quarter step every 5 s took a box of Celery workers 30 s of sheds to reach 2.5x).
    """
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    pool = FixedCapacity(capacity=None)
    students(pool, 200)  # 100 frames/s at the exam's own interval
    for i in range(900):  # 60 answers a second for 15 s; a frame shed 10 s in
        pool._observe(AnalysisResult(job_id="j", status=OK))
        if i == 600:
            pool._observe(AnalysisResult(job_id="j", status=EXPIRED, reason="stale"))
        clock[0] += 1 / 60
    # 100 / (60 x 0.8) = 2.08: 4.5 s at once, where a quarter step gave 2.5 s.
    assert 59.0 <= (pool._served_fps(clock[0]) or 0) <= 61.0
    assert pool.pace_interval_ms(2000) == 4500
    clock[0] += 25.0  # 20 s without a shed: a step back down
    assert pool.pace_interval_ms(2000) == 4000
    pool._observe(AnalysisResult(job_id="j", status=OK))
    assert len(pool._served) == 1  # the window keeps 10 s of answers, no more


# --- What the local workers can analyse ---------------------------------------------------------------------------


def test_a_sessions_first_frames_are_not_the_rooms_cost():
    """A first frame (nothing measured to re-use yet) runs every check; a room that connects at once must not read
    its capacity from those. Their CPU still counts as the workers' (the load besides them is the rest)."""
    pool = FixedCapacity(None)
    starting = job("alice")
    running = dataclasses.replace(starting, objects_memory=ObjectsMemory(seq=1, signature=b""))
    for _ in range(40):
        pool._observe(AnalysisResult(job_id="j", status=OK, worker_ms=40.0, worker_cpu_ms=38.0), starting)
    # Until the room's running frames are measured, its first frames are all there is: a provisional measure.
    assert pool.provisional and pool._service_s == pytest.approx(0.040) and pool._cpu_service_s == pytest.approx(0.038)
    assert pool.worker_cpu_s == pytest.approx(40 * 0.038)
    for _ in range(40):
        pool._observe(AnalysisResult(job_id="j", status=OK, worker_ms=22.0, worker_cpu_ms=20.0), running)
    assert not pool.provisional
    assert pool._service_s == pytest.approx(0.022) and pool._cpu_service_s == pytest.approx(0.020)
    # An exam that looks for no objects has no first-frame detector run: every frame counts.
    plain = dataclasses.replace(starting, objects=frozenset())
    pool._observe(AnalysisResult(job_id="j", status=OK, worker_ms=30.0, worker_cpu_ms=30.0), plain)
    assert len(pool._service_times) == 41
    # A shed first frame is still a shed: the congestion the pace reacts to.
    pool._observe(AnalysisResult(job_id="j", status=EXPIRED, reason="overloaded"), starting)
    assert len(pool._sheds) == 1


def test_a_pace_set_on_a_connecting_rooms_first_frames_is_corrected_once_its_running_frames_are_measured():
    """While only first frames are measured (they run every check), a joining student paces the room on them; as
    soon as its running frames are measured the pace follows those, without waiting out the hold (100 students were
    paced to 4 s for 10 s on a box that serves them at 2 s)."""

    class Measured(FixedCapacity):
        def capacity_fps(self):
            return 2 / self._service_s if self._service_s else None

    pool = Measured(None, frames_waiting=False)
    for _ in range(40):  # first frames: 40 ms each, so two workers manage 50 frames/s of them
        pool._observe(AnalysisResult(job_id="j", status=OK, worker_ms=40.0), job("alice"))
    students(pool, 120)  # 60 frames/s wanted: past 50
    assert pool.provisional and pool.pace_interval_ms(2000, joining=True) == 3500  # 60 / (50 x 0.8) = 1.5 -> 3.5 s
    running = dataclasses.replace(job("alice"), objects_memory=ObjectsMemory(seq=1, signature=b""))
    for _ in range(40):  # running frames: 20 ms, so 100 frames/s
        pool._observe(AnalysisResult(job_id="j", status=OK, worker_ms=20.0), running)
    assert not pool.provisional
    assert pool.pace_interval_ms(2000) == 2000  # 60 / (100 x 0.8) = 0.75: the exam's own, at once
    # From here the usual holds: a measured pace is not undone by the next answer.
    students(pool, 200)
    pool.frames_waiting = True
    assert pool.pace_interval_ms(2000) == 3000  # 100 / 80 = 1.25 -> 3 s
    pool.frames_waiting = False
    for i in range(120, 200):
        pool.leave(f"student-{i}")  # back to 60 frames/s: easing waits out the hold now
    assert pool.pace_interval_ms(2000) == 3000

    # A room the measured capacity would keep at the exam's own interval (wanted 1.07: a 2.5 s interval if kept)
    # is released to it, not held a little paced for the whole exam.
    pool = Measured(None, frames_waiting=True)
    for _ in range(40):
        pool._observe(AnalysisResult(job_id="j", status=OK, worker_ms=40.0), job("alice"))
    students(pool, 120)
    assert pool.pace_interval_ms(2000, joining=True) == 3500
    for _ in range(40):  # 28.5 ms: 70 frames/s, and 60 / (70 x 0.8) = 1.07
        pool._observe(AnalysisResult(job_id="j", status=OK, worker_ms=28.5), running)
    assert pool.pace_interval_ms(2000) == 2000


def test_the_load_besides_the_workers_is_the_machines_busy_time_less_theirs(monkeypatch):
    from proctoring.pool.local import OtherLoad

    load = OtherLoad()
    busy = iter([100.0, 101.5, 103.0])
    monkeypatch.setattr(load, "_busy_s", lambda: next(busy))
    assert load.update(0.0, workers_cpu_s=50.0) is None  # one sample is no window
    assert load.update(1.0, workers_cpu_s=51.0) is None  # nor is one second
    # 3 s of busy cores in 2 s, 2 s of them the workers': the server, the database and the rest kept 0.5 busy.
    assert load.update(2.0, workers_cpu_s=52.0, frames=100) == pytest.approx(0.5)
    assert load.frames_per_s == pytest.approx(50.0)  # 100 frames in the 2 s
    assert load.update(2.5, workers_cpu_s=52.0) == pytest.approx(0.5)  # sampled at most once a second


def test_the_local_capacity_counts_the_workers_cpu_time_and_the_cores_left_to_them():
    pool = LocalPool(workers=2, analyzer_path=SCRIPTED)
    pool._executor = object()  # as if started: no processes are needed for the arithmetic
    pool._ready.set()
    for _ in range(40):  # 25 ms of wall time a frame, 16 of them on a core
        pool._observe(AnalysisResult(job_id="j", status=OK, worker_ms=25.0, worker_cpu_ms=16.0))

    class Busy:
        cores, other, frames_per_s = 2, None, None

        def update(self, now, workers_cpu_s, frames=0):
            return self.other

    pool._other_load = busy = Busy()
    assert pool.capacity_fps() == pytest.approx(2 / 0.025)  # no window yet: the wall time alone
    busy.other = 0.4  # server and database: 1.6 cores left for two workers
    assert pool.capacity_fps() == pytest.approx(1.6 / 0.016)
    busy.other = 0.0  # at most one core per worker
    assert pool.capacity_fps() == pytest.approx(2 / 0.016)
    busy.other = 1.9  # the rest of the box takes nearly everything: still half a core
    assert pool.capacity_fps() == pytest.approx(0.5 / 0.016)
    # The rest works for the frames too: 0.4 cores at 50 frames/s is 8 ms a frame, so the cores fill at
    # 2 / (16 + 8) ms = 83 frames/s, not at the 100 that 1.6 free cores give at today's rate.
    busy.other, busy.frames_per_s = 0.4, 50.0
    assert pool.capacity_fps() == pytest.approx(2 / 0.024)
    busy.frames_per_s = 100.0  # at saturation both figures agree
    assert pool.capacity_fps() == pytest.approx(1.6 / 0.016)
    pool._executor = None


def test_a_student_slowed_by_the_server_is_never_called_stalled():
    settings = RuleSettings(frame_interval_ms=2000, stall_after=3)
    assert stall_due(last_frame_at=0.0, now=7.0, settings=settings)
    assert not stall_due(last_frame_at=0.0, now=7.0, settings=settings, interval_ms=4000)
    assert stall_due(last_frame_at=0.0, now=12.5, settings=settings, interval_ms=4000)


# --- The protocol, through the real consumer ----------------------------------------------------------------------


class SlowPool(InlinePool):
    """The scripted worker behind a pool that reports a chosen capacity (frames/s)."""

    name = "slow"
    CONGESTED_FOR_S = 0.0

    def __init__(self) -> None:
        super().__init__()
        self.capacity = 1000.0

    def capacity_fps(self) -> float | None:
        return self.capacity

    def _congested(self, now: float) -> bool:
        return self.capacity < 100  # frames pile up whenever the workers are this slow


@pytest.fixture
def alice():
    return StudentFactory(username="alice", first_name="Alice")


@pytest.fixture
def slow_pool():
    """Replaces the autouse inline pool for one test."""
    from proctoring import pool as pool_module

    pool = SlowPool()
    previous = pool_module.set_pool(pool)
    yield pool
    pool_module.set_pool(previous)


@pytest.mark.django_db(transaction=True)
async def test_alice_is_told_a_longer_interval_while_the_server_is_busy_and_the_usual_one_after(alice, slow_pool):
    attempt = await db(sitting)(alice, frame_interval_ms=2000)
    socket, ready = await join(alice, attempt.pk)
    assert ready["frame_interval_ms"] == 2000
    assert "PACE" not in [e["event"] for e in await show(socket, "alice")]

    students(slow_pool, 99)  # a full room arrives, and the workers manage 25 frames/s
    slow_pool.capacity = 25.0
    await socket.send_to(bytes_data=frame("alice"))
    events = await until(socket, {"PACE"})
    pace = events[-1]
    assert pace["frame_interval_ms"] == 5000 and pace["reason"] == "busy"
    assert "Nothing is wrong on your side" in pace["message"]

    for i in range(99):
        slow_pool.leave(f"student-{i}")
    slow_pool.capacity = 1000.0
    slow_pool._paced_at -= 11  # the hysteresis window has passed
    await socket.send_to(bytes_data=frame("alice"))
    events = await until(socket, {"PACE"})
    assert events[-1]["frame_interval_ms"] == 2000 and events[-1]["reason"] == "normal"
    await socket.disconnect()
    assert slow_pool.demand_fps() == 0  # the socket left the demand when it closed


@pytest.mark.django_db(transaction=True)
async def test_a_student_joining_a_paced_room_is_told_so_and_spreads_the_first_frame(alice, slow_pool):
    attempt = await db(sitting)(alice, frame_interval_ms=2000)
    socket, ready = await join(alice, attempt.pk)
    # A quiet room: the exam's own interval, the first frame at a random point of it (a room that presses Start
    # together is one wave otherwise), and nothing to tell the student.
    assert (ready["frame_interval_ms"], ready["reason"], ready["start_within_ms"]) == (2000, "normal", 2000)
    assert "message" not in ready
    await socket.disconnect()

    # A room past what the workers can give: the joining student hears the pace in READY, calmly, and spreads the
    # first frame over the paced interval.
    students(slow_pool, 199)
    slow_pool.capacity = 40.0
    socket, ready = await join(alice, attempt.pk)
    assert ready["frame_interval_ms"] == 5000 and ready["reason"] == "busy"
    assert ready["start_within_ms"] == 5000
    assert "Nothing is wrong on your side" in ready["message"]
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_paced_student_is_not_reported_stalled_at_the_exams_own_interval(alice, slow_pool):
    attempt = await db(sitting)(alice, frame_interval_ms=200, stall_after=2)
    socket, _ = await join(alice, attempt.pk)
    students(slow_pool, 500, interval_ms=200)
    slow_pool.capacity = 10.0  # 2,500 frames/s wanted: paced as far as the server ever paces
    await socket.send_to(bytes_data=frame("alice"))
    events = await until(socket, {"PACE"})
    assert events[-1]["frame_interval_ms"] == 500  # at most 2.5x the exam's own interval
    # 0.4 s is two of the exam's intervals (a stall), but under one paced interval: nothing is reported.
    assert await socket.receive_nothing(timeout=0.8)
    await socket.disconnect()


# --- The local pool: fair shedding and healthy workers --------------------------------------------------------------


def job(scene: str, *, priority: float = 0.0, deadline_in: float = 60.0) -> FrameJob:
    return FrameJob(
        job_id=uuid.uuid4().hex,
        session_id=1,
        seq=1,
        frame=frame(scene),
        enrolled=None,
        deadline=time.time() + deadline_in,
        priority=priority,
    )


async def test_the_student_unserved_longest_goes_first_and_a_frame_past_the_wait_budget_is_shed():
    pool = LocalPool(workers=1, analyzer_path=SCRIPTED)
    loop = asyncio.get_running_loop()
    now = time.time()

    def entry(last_result_s_ago: float) -> _Entry:
        priority = now - last_result_s_ago
        frame_job = job("alice", priority=priority, deadline_in=2.0)  # the exam's own 2 s interval
        return _Entry(priority, next(pool._order), frame_job, loop.create_future())

    served_just_now, served_long_ago, served_a_while_ago = entry(0.5), entry(3.0), entry(2.0)
    for e in (served_just_now, served_long_ago, served_a_while_ago):
        pool._admit(e)
    assert sorted(pool._waiting)[0] is served_long_ago and sorted(pool._waiting)[-1] is served_just_now
    # Under overload the recently served student's frame sits at the back, and is the one that outlives the budget.
    served_just_now.arrived -= WAIT_BUDGET_S + 0.1
    pool._sweep()
    assert served_just_now.waiter.result().status == EXPIRED
    assert served_just_now.waiter.result().reason == "overloaded"
    assert not served_long_ago.waiter.done() and not served_a_while_ago.waiter.done()
    assert pool.shed == 1
    assert pool._congested(time.monotonic()) is False  # nothing left has waited half the budget


async def test_a_frame_whose_shedding_would_leave_a_student_6_s_without_a_result_is_never_shed():
    pool = LocalPool(workers=1, analyzer_path=SCRIPTED)
    loop = asyncio.get_running_loop()

    def entry(last_result_s_ago: float, interval_s: float) -> _Entry:
        priority = time.time() - last_result_s_ago
        frame_job = dataclasses.replace(job("alice", priority=priority), deadline=time.time() + interval_s)
        return _Entry(priority, next(pool._order), frame_job, loop.create_future())

    at_own_pace = entry(2.0, 2.0)  # shed now, the next frame 2 s later still answers within 6 s
    paced = entry(3.5, 3.5)  # shed now, the next chance would be 7 s after the last result
    for e in (at_own_pace, paced):
        pool._admit(e)
        e.arrived -= WAIT_BUDGET_S + 0.5
    pool._sweep()
    assert at_own_pace.waiter.result().reason == "overloaded"
    assert not paced.waiter.done() and pool.shed == 1
    # Not at its deadline either: the student's next frame cannot reach the pool before this one is answered.
    pool._waiting[0].job = dataclasses.replace(paced.job, deadline=time.time() - 1)
    pool._swept_at = 0.0
    pool._sweep()
    assert pool._waiting[0].protected and not paced.waiter.done() and pool.shed == 1
    assert MAX_GAP_S == 6.0
    # But not until it times out: a protected frame that waited so long its answer could not come within the
    # pool's timeout is shed (OVERLOADED, never the student's) rather than left to become an ERROR.
    pool._waiting[0].arrived = time.monotonic() - (pool.timeout_s - PROTECTED_ANSWER_S) - 0.1
    pool._swept_at = 0.0
    pool._sweep()
    assert paced.waiter.result().status == EXPIRED and paced.waiter.result().reason == "overloaded"
    assert pool.shed == 2 and not pool._waiting


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_a_frame_that_times_out_waiting_never_kills_a_healthy_worker():
    pool = LocalPool(workers=1, analyzer_path=SCRIPTED, timeout_s=1.5)
    pool.start()
    try:
        [warm] = await asyncio.gather(pool.analyze(job("alice")))
        assert warm.status == OK
        pids = pool.worker_pids()
        # Two slow frames (1 s each) on one worker, and a quick one 0.3 s later: the first slow one is answered;
        # the second waits behind it inside the worker and the quick one waits behind both. Both time out (1.5 s),
        # and neither is a hung worker: the worker answered the first frame a moment ago.

        async def quick_later():
            await asyncio.sleep(0.3)
            return await pool.analyze(job("alice"))

        results = await asyncio.gather(pool.analyze(job("slow")), pool.analyze(job("slow")), quick_later())
        assert [r.status for r in results] == [OK, TIMEOUT, TIMEOUT]
        assert pool.respawns == 0 and pool.worker_pids() == pids
        for _ in range(100):  # the timed-out slow frames still finish in the worker that kept them
            if not pool._running:
                break
            await asyncio.sleep(0.05)
        [after] = await asyncio.gather(pool.analyze(job("alice")))
        assert after.status == OK and after.worker.endswith(f":{pids[0]}")
    finally:
        pool.close()


def test_a_frame_overtaken_after_waiting_here_is_not_a_hung_worker():
    """The hung-worker rule on the pool's own bookkeeping: a frame overtaken by one handed over after it is hung only
    when it has itself been with the workers for the whole timeout, not when it spent that time waiting here."""
    pool = LocalPool(workers=2, analyzer_path=SCRIPTED, timeout_s=5.0)
    replaced = []
    pool._replace = lambda executor, *, kill: replaced.append(kill)  # the rule, not the processes
    pool._executor = object()
    pool._ready.set()
    now = time.monotonic()
    late = _Entry(priority=0.0, order=1, job=job("alice"), waiter=None, dispatched=7, dispatched_at=now - 0.2)
    pool._dispatched[late.job.job_id] = late
    pool._running, pool._finished_up_to, pool._last_finish = 2, 9, now  # frames 8 and 9 came back just now
    pool._on_timeout(late.job)  # 4.8 s waiting here, 0.2 s with a worker: healthy
    assert replaced == []
    late.dispatched_at = now - 5.0  # the whole timeout with a worker while later frames came back: hung
    pool._on_timeout(late.job)
    assert replaced == [True]


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_a_truly_hung_worker_is_still_replaced():
    pool = LocalPool(workers=1, analyzer_path=SCRIPTED, timeout_s=0.6)
    pool.start()
    try:
        pids = pool.worker_pids()
        [hung] = await asyncio.gather(pool.analyze(job("slow")))  # 1 s of silence against a 0.6 s timeout
        assert hung.status == TIMEOUT
        assert pool.respawns == 1 and set(pool.worker_pids()).isdisjoint(pids)
    finally:
        pool.close()


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_a_students_first_frame_is_analysed_even_after_its_deadline():
    # A room that connects at twice the capacity: first frames wait past their deadline. The worker would skip a
    # stale frame; a student who has never had a result must get one all the same.
    pool = LocalPool(workers=1, analyzer_path=SCRIPTED, timeout_s=10)
    pool.start()
    try:
        [first] = await asyncio.gather(pool.analyze(job("alice", priority=0.0, deadline_in=-1.0)))
        assert first.status == OK
        [served] = await asyncio.gather(pool.analyze(job("alice", priority=time.time(), deadline_in=-1.0)))
        assert served.status == EXPIRED  # a student served a moment ago: the stale frame is skipped
    finally:
        pool.close()
