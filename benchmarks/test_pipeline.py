"""
Per-call overhead of a Pipeline against its stages stacked as decorators,
measured in the same run (budget, DESIGN.md: a pipeline costs at most its
stages stacked as decorators plus one call frame per stage).

Three pipelines, on their success path, sync and async: a breaker alone;
a retry around a breaker; a fallback, a retry, a breaker and a timeout.
For each, the stacked decorators (against a plain call / await), then the
pipeline's decorator and its ``call()`` / ``acall()`` (against the stacked
decorators), and the ``with`` / ``async with`` face of the all-guard
pipelines (against the pipeline's decorator).  The sync timeout runs the
call on a worker thread, so its rows measure that hand-off above all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import stalwart

from harness import abatch, af, batch, f


def _stages(kind: str) -> list[Any]:
    """
    Fresh stages of the pipeline *kind*, outermost first.
    """
    breaker = stalwart.CircuitBreaker(name="bench")
    if kind == "breaker":
        return [breaker]
    if kind == "retry-breaker":
        return [stalwart.Retry(name="bench"), breaker]
    if kind == "two-breakers":
        return [breaker, stalwart.CircuitBreaker(name="bench-2")]
    return [
        stalwart.Fallback(value=0, name="bench"),
        stalwart.Retry(name="bench"),
        breaker,
        stalwart.Timeout(seconds=60.0, name="bench"),
    ]


def _stacked(kind: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    for stage in reversed(_stages(kind)):
        fn = stage(fn)
    return fn


KINDS = ["breaker", "retry-breaker", "fallback-retry-breaker-timeout"]
WITH_KINDS = ["breaker", "two-breakers"]


def _run(benchmark: Any, stmt: str, ns: dict[str, Any], face: str) -> None:
    if face == "sync":
        benchmark(batch(stmt, ns))
    else:
        benchmark(abatch(f"await {stmt}", ns))


@pytest.mark.parametrize("face", ["sync", "async"])
@pytest.mark.parametrize("kind", KINDS + ["two-breakers"])
def test_stacked(benchmark: Any, kind: str, face: str) -> None:
    """The stages' own decorators stacked by hand, outermost first."""
    fn = f if face == "sync" else af
    benchmark.extra_info["baseline"] = (
        "test_plain_call" if face == "sync" else "test_plain_await"
    )
    _run(benchmark, "g(x)", {"g": _stacked(kind, fn), "x": 1}, face)


@pytest.mark.parametrize("face", ["sync", "async"])
@pytest.mark.parametrize("kind", KINDS + ["two-breakers"])
def test_pipeline_decorator(benchmark: Any, kind: str, face: str) -> None:
    """The pipeline's decorator (the same stages, stacked for us)."""
    fn = f if face == "sync" else af
    g = stalwart.Pipeline(*_stages(kind))(fn)
    benchmark.extra_info["baseline"] = f"test_stacked[{kind}-{face}]"
    _run(benchmark, "g(x)", {"g": g, "x": 1}, face)


@pytest.mark.parametrize("face", ["sync", "async"])
@pytest.mark.parametrize("kind", KINDS + ["two-breakers"])
def test_pipeline_call(benchmark: Any, kind: str, face: str) -> None:
    """``pipeline.call(f, x)`` / ``await pipeline.acall(af, x)``."""
    p = stalwart.Pipeline(*_stages(kind))
    benchmark.extra_info["baseline"] = f"test_stacked[{kind}-{face}]"
    if face == "sync":
        _run(benchmark, "p.call(f, x)", {"p": p, "f": f, "x": 1}, face)
    else:
        _run(benchmark, "p.acall(af, x)", {"p": p, "af": af, "x": 1}, face)


@pytest.mark.parametrize("kind", WITH_KINDS)
def test_pipeline_with(benchmark: Any, kind: str) -> None:
    """``with pipeline: f(x)`` for a pipeline of guards."""
    p = stalwart.Pipeline(*_stages(kind))
    benchmark.extra_info["baseline"] = f"test_pipeline_decorator[{kind}-sync]"
    benchmark(batch("with p:\n    f(x)", {"p": p, "f": f, "x": 1}))


@pytest.mark.parametrize("kind", WITH_KINDS)
def test_pipeline_async_with(benchmark: Any, kind: str) -> None:
    """``async with pipeline: await af(x)`` for a pipeline of guards."""
    p = stalwart.Pipeline(*_stages(kind))
    benchmark.extra_info["baseline"] = f"test_pipeline_decorator[{kind}-async]"
    benchmark(
        abatch("async with p:\n    await af(x)", {"p": p, "af": af, "x": 1})
    )


def test_pipeline_tagged_decorator(benchmark: Any) -> None:
    """A retry around a breaker whose stages have hooks: events are tagged."""
    hooked = [
        stalwart.Retry(name="bench", hooks=[_ignore]),
        stalwart.CircuitBreaker(name="bench", hooks=[_ignore]),
    ]
    g = stalwart.Pipeline(*hooked)(f)
    benchmark.extra_info["baseline"] = "test_stacked[retry-breaker-sync]"
    benchmark(batch("g(x)", {"g": g, "x": 1}))


def _ignore(event: stalwart.Event) -> None:
    """A hook that does nothing."""
