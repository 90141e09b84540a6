"""Chunks of a batch run on a Dask cluster: a ``LocalCluster`` of worker processes, or one already running.

The job goes to every worker once, as the bytes of ``Job.to_bytes`` (the project's own formats: model
folder files, TOML, JSON); each worker builds its engine once and caches it by the job's key, with one
intra-op torch thread (parallelism is across processes). Only a chunk's rows and a reference to
``answer_on_worker`` travel per task; at most ``2 x workers`` chunks are in flight, so memory stays flat.
Results come back as they finish; the runner writes each part whole, in any order.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pandas as pd

from actionable.batch_engine import Engine, answer_chunk, error_records
from actionable.batch_input import Chunk
from actionable.batch_jobs import Job
from actionable.errors import ConfigError, ModelError, SpecError

__all__ = ["answer_on_worker", "run_on_dask"]

_ENGINES: dict[str, Engine] = {}  # per worker process: the engines built, by job key


def answer_on_worker(blob: bytes, key: str, frame: pd.DataFrame, threads: int = 1) -> list[dict[str, Any]]:
    """One chunk's records on a worker (its engine built on first use and kept)."""
    engine = _ENGINES.get(key)
    if engine is None:
        from actionable.threads import set_threads

        set_threads(threads)
        engine = Job.from_bytes(blob).engine()
        _ENGINES.clear()  # one job at a time per worker: a finished job's model is not kept
        _ENGINES[key] = engine
    return answer_chunk(engine, frame)


def _client(workers: int | None, scheduler: str | None) -> tuple[Any, Any]:
    try:
        distributed: Any = importlib.import_module("dask.distributed")  # untyped: used through Any
    except ImportError:
        raise ConfigError(
            "batch: the Dask backend needs dask.distributed; pip install 'actionable[dask]'."
        ) from None
    if scheduler is not None:
        if workers is not None:
            raise ConfigError(
                "batch: give --workers (a local cluster) or --scheduler (an existing one), not both."
            )
        try:
            return distributed.Client(scheduler, timeout="20s"), None
        except (OSError, ValueError, TypeError) as error:  # no answer, or an address that is not one
            raise ConfigError(
                f"batch: no Dask scheduler answers at {scheduler!r} ({error}); start one or fix the address."
            ) from None
    count = 2 if workers is None else workers
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"batch: workers = {workers!r}; give a whole number of worker processes >= 1.")
    dask: Any = importlib.import_module("dask")
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    # Dask's default MALLOC_TRIM_THRESHOLD_ (64 KiB) returns memory to the system after every free: measured
    # 1.4-1.8x slower on synthesis, which allocates and frees many small tensors. glibc's own default is kept.
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        cluster = distributed.LocalCluster(
            n_workers=count, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=50
        )
    return distributed.Client(cluster), cluster


def run_on_dask(
    job: Job, work: Iterator[tuple[int, Chunk]], *, workers: int | None = None, scheduler: str | None = None
) -> Iterator[tuple[int, Chunk, list[dict[str, Any]]]]:
    """``(number, chunk, records)`` for every chunk of ``work``, computed on the cluster, as they finish."""
    distributed: Any = importlib.import_module("dask.distributed")
    client, cluster = _client(workers, scheduler)
    try:
        key = job.key
        blob = client.scatter(job.to_bytes(), broadcast=True)  # sent to each worker once, not per chunk
        window = 2 * max(len(client.scheduler_info().get("workers", {})), 1)
        pending = distributed.as_completed()
        owners: dict[Any, tuple[int, Chunk]] = {}
        for number, chunk in work:
            future = client.submit(answer_on_worker, blob, key, chunk.good, pure=False)
            owners[future] = (number, chunk)
            pending.add(future)
            if pending.count() >= window:
                yield _finished(next(pending), owners)
        for future in pending:
            yield _finished(future, owners)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _finished(future: Any, owners: dict[Any, tuple[int, Chunk]]) -> tuple[int, Chunk, list[dict[str, Any]]]:
    number, chunk = owners.pop(future)
    try:
        records: list[dict[str, Any]] = future.result()
    except (SpecError, ConfigError, ModelError):
        raise  # the run's own settings: every chunk would fail alike
    except Exception as error:  # a worker lost or an error outside the engine: the chunk's rows say so
        message = f"the chunk failed on a Dask worker: {type(error).__name__}: {error}"
        records = error_records(chunk.good.index, message)
    return number, chunk, records
