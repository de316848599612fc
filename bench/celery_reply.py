"""What sending one result back to its consumer costs a Celery inference worker, written to
bench/results/celery_reply.json.

    python bench/celery_reply.py [--results 600] [--redis redis://127.0.0.1:6379/14]

A worker sends each frame's result to the consumer's channel name through the Redis channel layer
(proctoring/tasks.py). Two ways, in turns of 100 results so both see the same machine: `async_to_sync` around the
layer's send, as the task did until 2026-11-30 (a new event loop in a new thread for every call, and with it a new
connection to Redis), and one event loop kept for the life of the process (what the task does now). Each reports
this process's CPU time (all its threads) and the wall time per result. The message is shaped like an analysed
frame's result, with its observation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import cpu_name  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "celery_reply.json"
TURN = 100


def result_message(i: int) -> dict:
    """A result shaped like an analysed frame's (0.7 KB of JSON; a thumbnail makes some larger)."""
    observation = {
        "width": 640,
        "height": 480,
        "faces": [{"box": [231.5, 120.25, 402.0, 330.5], "score": 0.97, "keypoints": [[300.1, 200.2]] * 6}],
        "identity": {"similarity": 0.81, "threshold": 0.45, "match": True},
        "pose": {"yaw": 3.2, "pitch": -4.1, "roll": 1.0},
        "gaze": {"yaw": 1.1, "pitch": -2.3},
        "objects": [],
        "timings_ms": {"detect": 2.2, "pose": 3.6, "embed": 2.0, "objects": 6.3, "total": 14.1},
        "models": {"pack": "default-int8@2026.11.30", "detector": "blazeface", "embedder": "arcface"},
    }
    result = {
        "job_id": f"bench-{i}",
        "status": "ok",
        "worker_ms": 14.1,
        "worker_cpu_ms": 13.9,
        "observation": observation,
    }
    return {"type": "proctor.result", "job_id": result["job_id"], "result": result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=600)
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"))
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examsite.settings")
    os.environ["REDIS_URL"] = args.redis
    import django

    django.setup()
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    kept = asyncio.new_event_loop()

    def per_call(channel: str, message: dict) -> None:
        async_to_sync(layer.send)(channel, message)

    def one_loop(channel: str, message: dict) -> None:
        kept.run_until_complete(layer.send(channel, message))

    ways = {"async_to_sync_per_result": per_call, "one_loop_per_process": one_loop}
    cpu = {name: 0.0 for name in ways}
    wall = {name: 0.0 for name in ways}
    done = {name: 0 for name in ways}
    i = 0
    for name, send in ways.items():  # warm both (imports, the first connection)
        send(f"bench.reply.warm.{name}", result_message(0))
    while min(done.values()) < args.results:
        for name, send in ways.items():
            c0, w0 = time.process_time(), time.perf_counter()
            for _ in range(TURN):
                i += 1
                # A new channel name each time, as each consumer has its own: none fills up.
                send(f"bench.reply.{i}", result_message(i))
            cpu[name] += time.process_time() - c0
            wall[name] += time.perf_counter() - w0
            done[name] += TURN
    kept.run_until_complete(layer.flush())
    kept.close()

    figures = {
        name: {"results": done[name], "cpu_ms_per_result": round(1000 * cpu[name] / done[name], 3),
               "wall_ms_per_result": round(1000 * wall[name] / done[name], 3)}
        for name in ways
    }  # fmt: skip
    out = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "cpu": cpu_name(),
        "load_average_at_end": os.getloadavg(),
        "message_bytes": len(json.dumps(result_message(1))),
        "figures": figures,
        "command": "python bench/celery_reply.py " + " ".join(sys.argv[1:]),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    for name, f in figures.items():
        print(f"{name}: {f['cpu_ms_per_result']} ms CPU, {f['wall_ms_per_result']} ms wall a result")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
