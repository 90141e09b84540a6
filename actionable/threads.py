"""The thread policy: one intra-op thread per process by default, parallelism across processes.

Measured on 2 shared cores: with one other busy process, torch at 2 intra-op threads slows 10-20x (its
OpenMP threads wait on each other), while one thread per process stays steady. ``set_threads`` sets torch's
intra-op threads and limits the BLAS / OpenMP pools of numpy, scipy and scikit-learn in the same process
(``threadpoolctl``); the CLI's global ``--threads N`` calls it before any command runs.
"""

from __future__ import annotations

from typing import Any

import torch

from actionable.errors import ConfigError

__all__ = ["DEFAULT_THREADS", "set_threads", "threads_in_use"]

DEFAULT_THREADS = 1

_limiter: Any = None  # the live threadpoolctl limit: kept referenced so the limit holds


def set_threads(n: int | None = None) -> int:
    """Use ``n`` intra-op threads (None: ``DEFAULT_THREADS``) in torch and in the BLAS / OpenMP pools of
    this process; returns ``n``. ``ConfigError`` for anything but a whole number >= 1."""
    global _limiter
    if n is None:
        n = DEFAULT_THREADS
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(
            f"--threads: {n!r} is not a thread count; give a whole number >= 1, e.g. --threads 1 "
            "(the default: one thread per process; run several processes for parallelism)."
        )
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    if _limiter is not None:  # back to the pools' own sizes first, so limits never stack
        _limiter.restore_original_limits()
    _limiter = threadpool_limits(limits=n)
    return n


def threads_in_use() -> int:
    """torch's intra-op threads in this process now."""
    return int(torch.get_num_threads())
