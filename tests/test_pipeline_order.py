"""
Pipeline: the order checks made where it is built.
"""

from __future__ import annotations

import re
import warnings

from collections.abc import Callable

import pytest

import stalwart

from pipeline_support import Gate, Runner


def retry() -> stalwart.Retry:
    """
    A retry named "r".
    """
    return stalwart.Retry(name="r")


def breaker() -> stalwart.CircuitBreaker:
    """
    A breaker named "b".
    """
    return stalwart.CircuitBreaker(name="b")


def fallback() -> stalwart.Fallback:
    """
    A fallback named "f".
    """
    return stalwart.Fallback(value=None, name="f")


def bulkhead() -> stalwart.Bulkhead:
    """
    A bulkhead named "bh".
    """
    return stalwart.Bulkhead(max_concurrent=2, name="bh")


def limiter() -> stalwart.TokenBucket:
    """
    A token bucket named "l".
    """
    return stalwart.TokenBucket(rate=10, capacity=10, name="l")


def timeout() -> stalwart.Timeout:
    """
    A timeout named "t".
    """
    return stalwart.Timeout(seconds=5.0, name="t")


def built(*stages: object) -> list[warnings.WarningMessage]:
    """
    Build a pipeline of *stages*, and return the warnings it gave.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stalwart.Pipeline(*stages, name="p")  # type: ignore[arg-type]  # doubles
    return caught


MISTAKES: list[tuple[str, Callable[[], list[object]], str]] = [
    (
        "fallback-inside-retry",
        lambda: [retry(), fallback()],
        (
            r"the fallback Fallback 'f' \(stage 1\) is inside Retry 'r' \(stage"
            r" 0\): a stage outside a fallback never sees a failure it replaced"
        ),
    ),
    (
        "fallback-inside-breaker",
        lambda: [fallback(), breaker(), fallback()],
        r"the fallback Fallback 'f' \(stage 2\) is inside CircuitBreaker 'b'",
    ),
    (
        "retry-inside-breaker",
        lambda: [breaker(), timeout(), retry()],
        (
            r"the retry Retry 'r' \(stage 2\) is inside the circuit breaker"
            r" CircuitBreaker 'b' \(stage 0\): the breaker sees one outcome per"
            r" call, after every attempt"
        ),
    ),
    (
        "bulkhead-outside-retry",
        lambda: [bulkhead(), retry(), breaker()],
        (
            r"the bulkhead Bulkhead 'bh' \(stage 0\) is outside the retry Retry"
            r" 'r' \(stage 1\): a call holds its permit through every attempt and"
            r" every backoff wait"
        ),
    ),
    (
        "limiter-outside-retry",
        lambda: [limiter(), retry()],
        (
            r"the limiter TokenBucket 'l' \(stage 0\) is outside the retry Retry"
            r" 'r' \(stage 1\): the limiter is asked once per call, so the"
            r" retries reach the dependency unlimited"
        ),
    ),
    (
        "two-retries",
        lambda: [retry(), timeout(), stalwart.Retry(name="r2")],
        (
            r"two retries, Retry 'r' \(stage 0\) and Retry 'r2' \(stage 2\):"
            r" their attempts multiply"
        ),
    ),
]


class TestMistakes:
    @pytest.mark.parametrize(
        ("stages", "message"),
        [(make, message) for _, make, message in MISTAKES],
        ids=[name for name, _, _ in MISTAKES],
    )
    def test_warns_with_the_reason(
        self, stages: Callable[[], list[object]], message: str
    ) -> None:
        """
        Each order known to be a mistake warns once, naming the stages,
        their positions and what goes wrong.
        """
        caught = built(*stages())

        assert 1 == len(caught)
        assert caught[0].category is stalwart.PipelineOrderWarning
        assert str(caught[0].message).startswith("Pipeline 'p': ")
        assert re.search(message, str(caught[0].message))

    def test_thread_pool_outside_a_retry(self) -> None:
        """
        A thread-pool bulkhead outside a retry warns as a bulkhead does.
        """
        with stalwart.ThreadPoolBulkhead(max_workers=1, name="pool") as pool:
            caught = built(pool, retry())

        assert 1 == len(caught)
        assert "the bulkhead ThreadPoolBulkhead 'pool' (stage 0)" in str(
            caught[0].message
        )

    @pytest.mark.parametrize(
        ("make", "kind"),
        [
            (lambda: stalwart.AdaptiveBulkhead(name="b"), "AdaptiveBulkhead"),
            (
                lambda: stalwart.WeightedBulkhead(max_weight=4, name="b"),
                "WeightedBulkhead",
            ),
            (
                lambda: stalwart.WeightedBulkhead(max_weight=4, name="b").hold(
                    2
                ),
                "WeightedBulkhead",  # a hold is named after its bulkhead
            ),
        ],
        ids=["adaptive", "weighted", "hold"],
    )
    def test_other_bulkheads_outside_a_retry(
        self, make: Callable[[], object], kind: str
    ) -> None:
        """
        The adaptive and weighted bulkheads (and a weighted hold) outside a
        retry warn as a bulkhead does.
        """
        caught = built(make(), retry())

        assert 1 == len(caught)
        assert f"the bulkhead {kind} " in str(caught[0].message)

    def test_every_mistake_warns(self) -> None:
        """
        A pipeline with several mistakes gives one warning for each stage
        in the wrong place, naming the first stage it conflicts with.
        """
        caught = built(limiter(), breaker(), retry(), fallback(), retry())
        starts = [
            (
                "the limiter TokenBucket 'l' (stage 0) is outside the retry"
                " Retry 'r' (stage 2)"
            ),
            "the retry Retry 'r' (stage 2) is inside the circuit breaker",
            "the fallback Fallback 'f' (stage 3) is inside TokenBucket 'l'",
            "two retries, Retry 'r' (stage 2) and Retry 'r' (stage 4)",
        ]

        assert starts == [
            str(warning.message).removeprefix("Pipeline 'p': ")[: len(start)]
            for warning, start in zip(caught, starts, strict=True)
        ]

    def test_filtered_or_made_an_error(self) -> None:
        """
        The category can be ignored, or turned into an error that refuses
        the pipeline.
        """
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", stalwart.PipelineOrderWarning)
            stalwart.Pipeline(breaker(), retry())
        with warnings.catch_warnings():
            warnings.simplefilter("error", stalwart.PipelineOrderWarning)
            with pytest.raises(stalwart.PipelineOrderWarning):
                stalwart.Pipeline(breaker(), retry())

    def test_points_at_the_user_s_line(self) -> None:
        """
        The warning is attributed to the line that built the pipeline.
        """
        with pytest.warns(stalwart.PipelineOrderWarning) as caught:
            stalwart.Pipeline(retry(), retry())

        assert __file__ == caught[0].filename

    def test_is_a_user_warning(self) -> None:
        """
        PipelineOrderWarning is a UserWarning, so the default filters show
        it.
        """
        assert issubclass(stalwart.PipelineOrderWarning, UserWarning)


class TestValidOrders:
    def test_recommended_order(self) -> None:
        """
        The recommended order gives no warning: fallback, total timeout,
        retry, limiter, bulkhead, breaker, timeout per attempt, chaos.
        """
        stages = [
            fallback(),
            timeout(),
            retry(),
            limiter(),
            bulkhead(),
            breaker(),
            timeout(),
            stalwart.Chaos(latency=0.1, enabled=False),
        ]

        assert [] == built(*stages)

    @pytest.mark.parametrize(
        "stages",
        [
            lambda: [timeout(), retry()],
            lambda: [retry(), timeout()],
            lambda: [timeout(), retry(), timeout()],
            lambda: [fallback(), fallback(), retry()],
            lambda: [retry(), bulkhead(), limiter()],
        ],
        ids=["total", "per-attempt", "both", "fallback-chain", "inside"],
    )
    def test_valid_orders(self, stages: Callable[[], list[object]]) -> None:
        """
        A timeout inside a retry (per attempt), outside it (total) or both,
        a chain of fallbacks outermost, and bulkheads and limiters inside
        a retry are all valid.
        """
        assert [] == built(*stages())

    def test_stages_of_unknown_kinds_are_not_judged(self) -> None:
        """
        Stages that are not stalwart's primitives get no order checks.
        """
        log: list[tuple[object, ...]] = []

        assert [] == built(Gate("g", log), Runner("r", log), Gate("h", log))

    def test_unpacked_pipelines_are_judged_whole(self) -> None:
        """
        A pipeline given as a stage is checked with the stages around it.
        """
        inner = stalwart.Pipeline(retry(), name="in")

        caught = built(breaker(), inner)

        assert 1 == len(caught)
        assert "inside the circuit breaker" in str(caught[0].message)
