"""The thread policy: set_threads sets torch's and the BLAS / OpenMP pools' threads, refuses bad counts,
and the CLI's global --threads applies it before any command runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from threadpoolctl import threadpool_info
from typer.testing import CliRunner

from actionable import threads
from actionable.cli import app
from actionable.errors import ConfigError
from actionable.threads import DEFAULT_THREADS, set_threads, threads_in_use

runner = CliRunner()


@pytest.fixture(autouse=True)
def restore_threads() -> Iterator[None]:
    """These tests change process-wide thread counts: put torch's and the pools' back afterwards."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
    if threads._limiter is not None:
        threads._limiter.restore_original_limits()
        threads._limiter = None


def pool_threads() -> set[int]:
    """The thread counts of the BLAS / OpenMP pools loaded in this process (threadpoolctl's own report)."""
    return {pool["num_threads"] for pool in threadpool_info()}


def numpy_blas_threads() -> int:
    """The thread count of the BLAS numpy itself loaded (threadpoolctl's report of numpy.libs)."""
    pools = [p for p in threadpool_info() if p["user_api"] == "blas" and "numpy" in p["filepath"]]
    return int(pools[0]["num_threads"]) if pools else -1


def test_default_is_one_thread() -> None:
    assert DEFAULT_THREADS == 1
    torch.set_num_threads(2)
    assert set_threads() == 1
    assert torch.get_num_threads() == 1 and threads_in_use() == 1
    assert pool_threads() == {1}


@pytest.mark.parametrize("n", [1, 2, 3])
def test_sets_torch_and_the_blas_pools(n: int) -> None:
    assert set_threads(n) == n
    assert torch.get_num_threads() == n and threads_in_use() == n
    assert threadpool_info(), "numpy's BLAS should be loaded"
    # every pool is limited to n; numpy's own BLAS reaches n (a pool another library loaded may be built
    # for fewer threads, or held at 1 by that library: in the full suite one is)
    assert max(pool_threads()) == n and numpy_blas_threads() == n, threadpool_info()


def test_limits_do_not_stack_and_hold() -> None:
    import gc

    set_threads(1)
    set_threads(2)  # the first limit is undone before the second: the pools end at 2, not 1
    gc.collect()  # the limiter is kept referenced, so the limit holds
    assert max(pool_threads()) == 2 and numpy_blas_threads() == 2 and torch.get_num_threads() == 2


@pytest.mark.parametrize("bad", [0, -1, True, False, 1.5, "2"])
def test_refuses_bad_counts_naming_the_option(bad: object) -> None:
    before = torch.get_num_threads()
    with pytest.raises(ConfigError, match="--threads") as caught:
        set_threads(bad)  # type: ignore[arg-type]
    assert "whole number >= 1" in str(caught.value)
    assert torch.get_num_threads() == before  # nothing changed


def test_cli_threads_option_applies_before_the_command() -> None:
    result = runner.invoke(app, ["--threads", "2", "datasets"])
    assert result.exit_code == 0, result.output
    assert "german" in result.output and threads_in_use() == 2
    result = runner.invoke(app, ["datasets"])  # the default: one thread
    assert result.exit_code == 0 and "german" in result.output and threads_in_use() == 1


def test_cli_threads_option_is_shown_and_checked() -> None:
    assert "--threads" in runner.invoke(app, ["--help"]).output
    result = runner.invoke(app, ["--threads", "0", "datasets"])
    assert result.exit_code == 2 and "--threads" in result.output and "Traceback" not in result.output
    assert "german" not in result.output  # refused before the command ran
