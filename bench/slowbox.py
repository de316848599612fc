"""A slower box's models on this box: the real analyzer, then as much again busy CPU as `BENCH_SLOWER` says.

    python bench/capacity.py --students 125,150 --label NAME \
        --env INFERENCE_ANALYZER=bench.slowbox:get_analyzer --env BENCH_SLOWER=1.6

The 2-core boxes differ most in how fast they run the models: the whole analysis of a frame with every check takes
19-20 ms on the AMD EPYC boxes and 32 ms on the slower box of stop 16 (`bench/pipeline.py`), 1.6 times as long,
while the server's CPU a frame differed by about 1.15 times (4.5 and 5.2 ms). So this analyzer runs the real one and
then keeps the worker busy for (BENCH_SLOWER - 1) times the CPU time the analysis took: every result is the
real one, and the worker's CPU time a frame (which the pool's capacity estimate reads) is what the slower box's
would be. The server, PostgreSQL and JPEG decoding keep this box's speed, so the emulation is a little kinder to the
server than the slower box was. A whole-box CPU quota was tried first and was not faithful: it slowed the server as
much as the models.

Bench only: nothing in the product imports this.
"""

from __future__ import annotations

import os
import time
from typing import Any

from proctoring.vision import pipeline


class SlowerAnalyzer:
    """The real analyzer with `factor` times its CPU time per frame (every other attribute passes through)."""

    def __init__(self, inner: pipeline.Analyzer, factor: float) -> None:
        self.inner = inner
        self.factor = max(1.0, factor)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def analyze(self, image: Any, **options: Any) -> Any:
        start = time.process_time()
        observation = self.inner.analyze(image, **options)
        until = time.process_time() + (time.process_time() - start) * (self.factor - 1.0)
        while time.process_time() < until:
            pass
        return observation


def get_analyzer(pack: str | None = None, *, threads: int | None = None) -> SlowerAnalyzer:
    return SlowerAnalyzer(pipeline.get_analyzer(pack, threads=threads), float(os.environ.get("BENCH_SLOWER", "1")))
