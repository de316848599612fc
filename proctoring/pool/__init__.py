"""The dedicated inference worker pool: one interface (base.InferencePool), two back ends.

- ``local`` (default): worker processes inside the ASGI server process, models loaded once per worker.
- ``celery``: Celery workers on the ``inference`` queue; results come back through the channel layer.

The consumer gets the process-wide pool from ``get_pool()``; tests swap it with ``set_pool()``.
"""

from __future__ import annotations

import atexit
import threading

from django.conf import settings

from .base import AnalysisResult, FrameJob, InferencePool

__all__ = ["AnalysisResult", "FrameJob", "InferencePool", "build_pool", "get_pool", "set_pool"]

_pool: InferencePool | None = None
_lock = threading.Lock()


def build_pool(kind: str | None = None) -> InferencePool:
    kind = kind or settings.INFERENCE_POOL
    timeout_s = float(getattr(settings, "INFERENCE_TIMEOUT_S", 5.0))
    if kind == "local":
        from .local import LocalPool  # lazy: only the chosen back end loads

        return LocalPool(
            workers=settings.INFERENCE_WORKERS,
            threads=settings.INFERENCE_THREADS,
            pack=settings.MODEL_PACK,
            timeout_s=timeout_s,
            nice=settings.INFERENCE_NICE,
        )
    if kind == "celery":
        from .celery_backend import CeleryPool  # lazy: only the chosen back end loads

        return CeleryPool(timeout_s=timeout_s)
    raise ValueError(f"INFERENCE_POOL must be 'local' or 'celery', not {kind!r}")


def get_pool() -> InferencePool:
    """The process-wide pool, built on first use (so importing the ASGI app starts no worker)."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = build_pool()
            # Stop the workers while the interpreter is still whole: left to interpreter teardown, the executor's
            # callbacks ran after their modules were cleared, and every server stop (Ctrl-C on `make demo`)
            # printed a traceback.
            atexit.register(_pool.close)
        return _pool


def set_pool(pool: InferencePool | None) -> InferencePool | None:
    """Replace the process-wide pool (tests, benchmarks); returns the previous one, which the caller closes."""
    global _pool
    with _lock:
        previous, _pool = _pool, pool
        return previous
