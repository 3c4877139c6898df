"""
pytest-benchmark glue: print every benchmark as a ratio to its baseline.

A benchmark test times a batch from ``harness.batch``/``harness.abatch``
and names its baseline test with
``benchmark.extra_info["baseline"] = "test_plain_call"``; the baselines
live in ``test_baselines.py``.  At the end of the run a table gives each
benchmark's median per call and its ratio to the baseline's median from
the same run.

Run: ``python -m pytest benchmarks --benchmark-enable -p no:cacheprovider``
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from harness import BATCH, LOOP


_RESULTS: dict[str, tuple[float, str | None]] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """
    After a benchmark test, remember its median and its baseline.
    """
    result = yield
    bench = getattr(item, "funcargs", {}).get("benchmark")
    stats = getattr(bench, "stats", None)
    if stats is not None:
        _RESULTS[item.name] = (
            stats.stats.median / BATCH,
            bench.extra_info.get("baseline"),
        )
    return result


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """
    Print the ratios of every benchmark to its same-run baseline.
    """
    if not _RESULTS:
        return
    write = terminalreporter.write_line
    write("")
    write("ratios to a baseline measured in the same run (median per call)")
    for name, (median, baseline) in sorted(_RESULTS.items()):
        if baseline is None:
            write(f"  {name:<60} {median * 1e9:9.0f} ns  (baseline)")
            continue
        ref = _RESULTS.get(baseline)
        ratio = f"{median / ref[0]:6.2f}x {baseline}" if ref else "no baseline"
        write(f"  {name:<60} {median * 1e9:9.0f} ns  {ratio}")


def pytest_sessionfinish() -> None:
    """
    Close the shared event loop of the async batches.
    """
    LOOP.close()
