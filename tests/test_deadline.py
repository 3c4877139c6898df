"""
The deadline that travels with a call.
"""

from __future__ import annotations

import asyncio

from stalwart import current_deadline, remaining_time
from stalwart._deadline import cap_wait, deadline_scope


class TestDeadline:
    def test_no_deadline_by_default(self):
        """
        Outside any scope there is no deadline and waits are not capped.
        """
        assert current_deadline() is None
        assert remaining_time() is None
        assert (5.0, False) == cap_wait(5.0)

    def test_scope_sets_and_restores(self, clock):
        """
        A scope sets a deadline relative to its clock and removes it on exit.
        """
        with deadline_scope(2.0, clock) as deadline:
            clock.advance(0.5)

            assert current_deadline() is deadline
            assert 1.5 == remaining_time()
            assert not deadline.expired
            clock.advance(1.5)
            assert deadline.expired

        assert current_deadline() is None

    def test_nesting_only_shortens(self, clock):
        """
        An inner scope longer than the outer one keeps the outer deadline.
        """
        with deadline_scope(1.0, clock) as outer:
            with deadline_scope(5.0, clock) as inner:
                assert inner is outer
            with deadline_scope(0.5, clock) as shorter:
                assert 0.5 == shorter.at

    def test_cap_wait(self, clock):
        """
        Waits are capped by the time left, and say when they were.
        """
        with deadline_scope(2.0, clock):
            assert (1.0, False) == cap_wait(1.0)
            assert (2.0, True) == cap_wait(3.0)
            assert (2.0, True) == cap_wait(None)
            clock.advance(3.0)
            assert (0.0, True) == cap_wait(1.0)

    def test_follows_tasks(self, clock):
        """
        A task started inside a scope sees its deadline; the outside not.
        """

        async def main() -> tuple[float | None, float | None]:
            with deadline_scope(3.0, clock):
                inside = await asyncio.create_task(_remaining())
            outside = await asyncio.create_task(_remaining())
            return inside, outside

        async def _remaining() -> float | None:
            return remaining_time()

        assert (3.0, None) == asyncio.run(main())
