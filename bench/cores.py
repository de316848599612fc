"""Are this machine's two cores two cores? The server's kind of work and the workers' kind, each alone and beside
the other on the second core, written to bench/results/cores.json.

    python bench/cores.py [--rounds 10]

A cloud machine's "2 vCPUs" are often the two hyperthreads of one physical core: both run at once, but they share
one core's execution units, so what one runs slows the other. On such a box a worker analysing frames slows down
whenever the ASGI server (Python) runs beside it, and the box holds far fewer students than two real cores would
(README, Capacity and sizing). `nproc` and lscpu cannot tell: a virtual machine reports what its host declares.

Two workloads, each a block of fixed work timed in its own process's CPU seconds, on core 0:
- python: the interpreter's kind of work, as the server does (dicts, strings, small integers);
- worker: the inference worker's job on the frames bench/capacity.py streams (decode, models with their chosen
  precision, the skip rule), through proctoring.pool.base.analyze_job, as bench/pipeline.py's chosen_settings.
Each is timed alone (core 1 idle) and beside a python or a worker running throughout on core 1, in rounds that
interleave the pairings so that all see the same machine. Reported: the median CPU time of a block per pairing,
the slowdown beside each neighbour, and for a pair of equals the work two cores do against one (2.0: independent
cores; about 1.3: two hyperthreads of one core).

Each round also times the worker's frames with its core idle (asleep) for 10 ms after each frame, and spinning for
those 10 ms instead, as a worker is between frames below full load: on a virtual machine whose host deschedules an
idle vCPU, the frame after an idle gap costs more CPU than one back to back (README, Capacity and sizing).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RESULTS = Path(__file__).resolve().parent / "results" / "cores.json"
WORKER_FRAMES_PER_BLOCK = 24
IDLE_GAP_S = 0.010
# Below this, two equals on the two cores do less than 1.6 cores' work: they share a core.
SHARED_BELOW = 1.6


def python_block(gap_s: float = 0.0) -> None:
    counts: dict[int, int] = {}
    words = []
    for i in range(120_000):
        counts[i % 997] = counts.get(i % 997, 0) + i
        if i % 50 == 0:
            words.append(f"frame-{i}:{counts[i % 997]}")
    ",".join(words).split(",")


def worker_block_factory() -> Any:
    """The worker's job over WORKER_FRAMES_PER_BLOCK capacity-benchmark frames, with the session's object memory
    carried from frame to frame as the consumer does. The block's `gap_s` after each frame: > 0 idle (asleep), < 0
    spinning; it returns the CPU seconds of its frames alone."""
    import uuid

    from bench import evalset

    os.environ["INFERENCE_THREADS"] = "1"
    evalset._setup_django()
    from bench.pipeline import enrolled_student, student_streams
    from proctoring.pool import base
    from proctoring.rules import RuleSettings

    base.worker_init(None, threads=1)
    if base._analyzer is None:
        raise SystemExit(f"the analyzer did not load: {base._analyzer_error}")
    enrolled = enrolled_student(base._analyzer)
    frames = [frame for stream in student_streams() for frame in stream]
    reuse = RuleSettings().object_reuse_frames
    state = {"at": 0, "memory": None}

    def block(gap_s: float = 0.0) -> float:
        cpu = 0.0
        for _ in range(WORKER_FRAMES_PER_BLOCK):
            started = time.process_time()
            seq = state["at"] % len(frames) + 1
            if seq == 1:
                state["memory"] = None
            job = base.FrameJob(job_id=uuid.uuid4().hex, session_id=1, seq=seq, frame=frames[seq - 1],
                                enrolled=enrolled, objects_memory=state["memory"])  # fmt: skip
            result = base.AnalysisResult.from_dict(base.analyze_job(job))
            state["memory"] = base.objects_memory_after(state["memory"], seq=seq, result=result, limit=reuse)
            state["at"] += 1
            cpu += time.process_time() - started
            if gap_s > 0:
                time.sleep(gap_s)
            elif gap_s < 0:
                until = time.perf_counter() - gap_s
                while time.perf_counter() < until:
                    pass
        return cpu

    return block


def child(kind: str, core: int, conn: Any) -> None:
    """One pinned process: ("blocks", n, gap) -> the CPU seconds of n blocks; ("until_stopped", 0, 0) -> blocks until
    the next message, then the CPU seconds of those; None ends it."""
    os.sched_setaffinity(0, {core})
    block = python_block if kind == "python" else worker_block_factory()
    block()  # warm: first inferences, caches
    conn.send("ready")
    while (message := conn.recv()) is not None:
        what, amount, gap = message
        times: list[float] = []
        while not (what == "blocks" and len(times) >= amount):
            if what == "until_stopped" and conn.poll():
                conn.recv()
                break
            started = time.process_time()
            own = block(gap)
            times.append(own if own is not None else time.process_time() - started)
        conn.send(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--blocks", type=int, default=2, help="blocks timed per pairing and round")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("needs Linux and at least two cores to pin to")
    cores = sorted(os.sched_getaffinity(0))[:2]
    ctx = mp.get_context("spawn")
    procs: dict[tuple[str, int], tuple[Any, Any]] = {}
    for kind in ("python", "worker"):
        for core in cores:
            here, there = ctx.Pipe()
            process = ctx.Process(target=child, args=(kind, core, there), daemon=True)
            process.start()
            procs[(kind, core)] = (process, here)
    for _process, conn in procs.values():
        if conn.recv() != "ready":
            raise SystemExit("a process did not start")
    print(f"cores {cores}: {args.rounds} rounds of {args.blocks} blocks per pairing", flush=True)

    measured, neighbour_core = cores
    pairings = [(kind, beside) for kind in ("worker", "python") for beside in (None, "python", "worker")]
    times: dict[str, list[float]] = {f"{kind} beside {beside or 'nothing'}": [] for kind, beside in pairings}
    gaps: dict[str, list[float]] = {"idle": [], "spinning": []}
    for round_ in range(args.rounds):
        for kind, beside in pairings:
            conn = procs[(kind, measured)][1]
            if beside is None:
                conn.send(("blocks", args.blocks, 0.0))
                got = conn.recv()
            else:
                other = procs[(beside, neighbour_core)][1]
                other.send(("until_stopped", 0, 0.0))
                time.sleep(0.2)  # the neighbour is under way before the measured blocks start
                conn.send(("blocks", args.blocks, 0.0))
                got = conn.recv()
                other.send("stop")
                other.recv()
            times[f"{kind} beside {beside or 'nothing'}"].extend(got)
        # The worker's frames with the core idle (asleep) or spinning for IDLE_GAP_S after each, as a worker is
        # between frames below full load.
        conn = procs[("worker", measured)][1]
        for label, gap in (("idle", IDLE_GAP_S), ("spinning", -IDLE_GAP_S)):
            conn.send(("blocks", args.blocks, gap))
            gaps[label].extend(conn.recv())
        print(f"round {round_ + 1}/{args.rounds} done", flush=True)
    for process, conn in procs.values():
        conn.send(None)
        process.join(timeout=10)

    from bench.machine import cpu_name

    median_ms = {k: round(statistics.median(v) * 1000, 1) for k, v in times.items()}

    def per_frame_ms(blocks: list[float]) -> float:
        return round(statistics.median(blocks) * 1000 / WORKER_FRAMES_PER_BLOCK, 2)

    # The host's speed drifts from minute to minute (a shared machine): each pairing is set against the same kind
    # alone in the same round, and the median of those per-round ratios reported, with their range.
    ratios: dict[str, list[float]] = {}
    for key, values in times.items():
        kind, beside = key.split(" beside ")
        if beside == "nothing":
            continue
        alone = times[f"{kind} beside nothing"]
        ratios[key] = [
            statistics.median(values[i : i + args.blocks]) / statistics.median(alone[i : i + args.blocks])
            for i in range(0, len(values), args.blocks)
        ]
    result = {
        "what": "CPU ms of a block of work on one core, alone and beside a neighbour on the other core; slowdown: "
        "the median over rounds of (beside / alone in the same round), with its range",
        "cpu": cpu_name(),
        "cores": cores,
        "rounds": args.rounds,
        "blocks_per_round": args.blocks,
        "worker_frames_per_block": WORKER_FRAMES_PER_BLOCK,
        "median_ms": median_ms,
        "slowdown": {k: round(statistics.median(v), 2) for k, v in ratios.items()},
        "slowdown_range": {k: [round(min(v), 2), round(max(v), 2)] for k, v in ratios.items()},
        "two_cores_do": {
            kind: round(2 / statistics.median(ratios[f"{kind} beside {kind}"]), 2) for kind in ("python", "worker")
        },
        "worker_ms_a_frame": {
            "back_to_back": per_frame_ms(times["worker beside nothing"]),
            **{f"{label}_{IDLE_GAP_S * 1000:g}ms_after_each": per_frame_ms(v) for label, v in gaps.items()},
        },
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    result["verdict"] = (
        "the two cores share one physical core (hyperthreads): count them as one core and a third"
        if result["two_cores_do"]["python"] < SHARED_BELOW
        else "independent cores"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for key, value in median_ms.items():
        spread = result["slowdown_range"].get(key)
        beside = f"  x{result['slowdown'][key]} (rounds: {spread[0]}-{spread[1]})" if spread else ""
        print(f"{key:22s} {value:8.1f} ms{beside}")
    print(f"worker CPU a frame: {result['worker_ms_a_frame']}")
    print(f"two cores do {result['two_cores_do']} times the work of one: {result['verdict']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
