"""
Measure per-call overhead as ratios to a baseline measured in the same run.

Two ways in, one method:

* :func:`batch` / :func:`abatch` compile a statement into a loop of *n*
  calls, for pytest-benchmark tests (``benchmarks/test_*.py``): every test
  times a batch, so per-call costs and ratios to a baseline batch are
  comparable.
* :class:`Suite` is the side-by-side comparison with the peers
  (``benchmarks/compare_peers.py``), following
  ``shared/bench/peers_overhead.py``: rows are sampled round-robin in a
  shuffled order each round, each ratio is taken against the baseline
  sample of the same round, and the median of those ratios is reported, so
  machine noise hits every row alike.

Baselines (names usable as ``baseline=``): ``plain`` (``f(x)``), ``await``
(``await af(x)``), ``raise`` (call :func:`boom`, which raises a new
exception, and catch it: the reference DESIGN.md's refused-call budget was
set against),
``bsem`` (``threading.BoundedSemaphore`` acquire and release with ``with``),
``asem`` (``async with asyncio.Semaphore``), ``lock`` (``with
threading.Lock``).
"""

from __future__ import annotations

import asyncio
import gc
import random
import statistics
import textwrap
import threading
import time

from collections.abc import Awaitable, Callable
from itertools import repeat
from typing import Any


BATCH = 1000
_perf_ns = time.perf_counter_ns

LOOP = asyncio.new_event_loop()
"""The event loop async batches run on; closed at the end of the session."""


def f(x: int) -> int:
    """The plain function every sync ratio is taken against."""
    return x


async def af(x: int) -> int:
    """The plain coroutine every async ratio is taken against."""
    return x


class Boom(Exception):
    """Raised by the failing functions of the benchmarks."""


def boom(x: int) -> int:
    """
    The failing twin of :func:`f`: the ``raise`` baseline calls it, as
    ``shared/bench/peers_overhead.py`` does for the refused-call budget.
    """
    raise Boom


def flaky() -> Callable[[int], int]:
    """
    A function that fails every other call: each retried call fails once.
    """
    state = [0]

    def fl(x: int) -> int:
        state[0] += 1
        if state[0] % 2:
            raise Boom
        return x

    return fl


def aflaky() -> Callable[[int], Awaitable[int]]:
    """
    The async twin of :func:`flaky`.
    """
    state = [0]

    async def fl(x: int) -> int:
        state[0] += 1
        if state[0] % 2:
            raise Boom
        return x

    return fl


INLINE_RETRY = "try:\n    fl(x)\nexcept Boom:\n    fl(x)"
"""A hand-written retry of :func:`flaky`: one failure, one success."""
AINLINE_RETRY = "try:\n    await fl(x)\nexcept Boom:\n    await fl(x)"
"""The async twin of :data:`INLINE_RETRY`, over :func:`aflaky`."""


def _compile(
    stmt: str, ns: dict[str, Any], is_async: bool
) -> Callable[..., Any]:
    names = sorted(ns)
    setup = "".join(f"    {k} = _ns[{k!r}]\n" for k in names) or "    pass\n"
    body = textwrap.indent(textwrap.dedent(stmt).strip("\n"), " " * 8)
    src = (
        f"{'async ' if is_async else ''}def _inner(_ns, _n, _timer, _repeat):\n"
        f"{setup}"
        "    _t0 = _timer()\n"
        "    for _ in _repeat(None, _n):\n"
        f"{body}\n"
        "    return _timer() - _t0\n"
    )
    glb: dict[str, Any] = {}
    exec(compile(src, "<bench>", "exec"), glb)  # noqa: S102  # our own statements
    return glb["_inner"]  # type: ignore[no-any-return]


def batch(stmt: str, ns: dict[str, Any], n: int = BATCH) -> Callable[[], int]:
    """
    Return a function that runs *stmt* *n* times (names bound from *ns*).
    """
    inner = _compile(stmt, ns, is_async=False)
    return lambda: inner(ns, n, _perf_ns, repeat)


def abatch(
    stmt: str,
    ns: dict[str, Any],
    n: int = BATCH,
    loop: asyncio.AbstractEventLoop | None = None,
) -> Callable[[], int]:
    """
    Return a function that runs the async *stmt* *n* times in one
    coroutine on *loop* (a fresh loop by default).
    """
    inner = _compile(stmt, ns, is_async=True)
    loop = loop or LOOP
    return lambda: loop.run_until_complete(inner(ns, n, _perf_ns, repeat))


def baselines() -> dict[str, tuple[str, dict[str, Any], bool]]:
    """
    The baseline statements: name -> (stmt, namespace, is_async).
    """
    return {
        "plain": ("f(x)", {"f": f, "x": 1}, False),
        "await": ("await af(x)", {"af": af, "x": 1}, True),
        "raise": (
            "try:\n    boom(x)\nexcept E:\n    pass",
            {"boom": boom, "E": Boom, "x": 1},
            False,
        ),
        "bsem": (
            "with s:\n    pass",
            {"s": threading.BoundedSemaphore(10)},
            False,
        ),
        "asem": (
            "async with s:\n    pass",
            {"s": asyncio.Semaphore(10)},
            True,
        ),
        "lock": ("with s:\n    pass", {"s": threading.Lock()}, False),
    }


class Row:
    """One measured statement."""

    def __init__(
        self,
        section: str,
        name: str,
        stmt: str,
        ns: dict[str, Any],
        *,
        is_async: bool,
        baseline: str,
        kind: str,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.section, self.name, self.kind = section, name, kind
        self.baseline = baseline
        self.is_async = is_async
        self._ns = ns
        self._inner = _compile(stmt, ns, is_async)
        self._loop = loop
        self.samples: list[float] = []
        self.n = 1

    def run(self, n: int) -> int:
        """Total ns for *n* calls."""
        if self.is_async:
            return self._loop.run_until_complete(  # type: ignore[no-any-return]
                self._inner(self._ns, n, _perf_ns, repeat)
            )
        return self._inner(self._ns, n, _perf_ns, repeat)  # type: ignore[no-any-return]


class Suite:
    """
    Rows sampled round-robin; ratios against same-round baselines.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.rows: list[Row] = []
        self.skipped: list[tuple[str, str]] = []
        self.summaries: list[Callable[[Suite], str]] = []
        """Functions of the suite whose text ends the report (after a run)."""
        for name, (stmt, ns, is_async) in baselines().items():
            if name == "asem":
                ns = {"s": self._in_loop(lambda: asyncio.Semaphore(10))}
            self.add(
                "baselines", name, stmt, ns, is_async=is_async, kind="base"
            )

    def _in_loop(self, make: Callable[[], Any]) -> Any:
        async def build() -> Any:
            return make()

        return self.loop.run_until_complete(build())

    def add(
        self,
        section: str,
        name: str,
        stmt: str,
        ns: dict[str, Any],
        *,
        is_async: bool = False,
        baseline: str | None = None,
        kind: str = "ours",
    ) -> None:
        """
        Add a row; a row whose smoke run raises is skipped and reported.
        """
        if baseline is None:
            baseline = "await" if is_async else "plain"
        try:
            row = Row(
                section,
                name,
                stmt,
                ns,
                is_async=is_async,
                baseline=baseline,
                kind=kind,
                loop=self.loop,
            )
            row.run(3)
        except Exception as e:  # a peer whose API moved must not kill the run
            self.skipped.append((name, f"{type(e).__name__}: {e}"))
            return
        self.rows.append(row)

    def run(self, rounds: int = 15, target_ms: float = 20.0) -> None:
        """
        Calibrate each row to about *target_ms* per sample, then sample
        every row once per round in a shuffled order.
        """
        for row in self.rows:
            n = 1
            while True:
                took = row.run(n)
                if took >= target_ms * 1e6 / 4 or n >= 1 << 24:
                    break
                n *= 2
            row.n = max(1, int(n * target_ms * 1e6 / max(took, 1)))
        gc.collect()
        gc.freeze()
        order = list(self.rows)
        for _ in range(rounds):
            random.shuffle(order)
            for row in order:
                row.samples.append(row.run(row.n) / row.n)

    def ratios(self) -> dict[str, float]:
        """
        Median over rounds of each row's ratio to its baseline's sample.
        """
        base = {r.name: r for r in self.rows if r.kind == "base"}
        out: dict[str, float] = {}
        for row in self.rows:
            ref = base[row.baseline]
            out[row.name] = statistics.median(
                s / b for s, b in zip(row.samples, ref.samples, strict=True)
            )
        return out

    def report(self) -> str:
        """
        A Markdown table per section: median ns per call and the ratio.
        """
        ratios = self.ratios()
        lines: list[str] = []
        section = None
        for row in self.rows:
            if row.section != section:
                section = row.section
                lines += [
                    "",
                    f"### {section}",
                    "",
                    "| row | kind | ns/call | ratio | vs |",
                    "| --- | --- | ---: | ---: | --- |",
                ]
            lines.append(
                f"| {row.name} | {row.kind} | "
                f"{statistics.median(row.samples):,.0f} | "
                f"{ratios[row.name]:.2f}x | {row.baseline} |"
            )
        for name, why in self.skipped:
            lines.append(f"\nskipped {name}: {why}")
        lines += [summary(self) for summary in self.summaries]
        return "\n".join(lines)

    def row(self, name: str) -> Row:
        """The row called *name*."""
        return next(row for row in self.rows if row.name == name)
