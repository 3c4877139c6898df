"""
What the interpreter guarantees to lock-free counters, read once.

Under the GIL, ``n += 1.0`` on a closure cell is never interrupted by another
thread: the interpreter only switches threads at calls and backward jumps,
and the increment makes neither.  The decorators' hot paths count that way.
Free-threaded builds have no such guarantee; there, decorated functions go
through the ``call()`` faces, which count with ``itertools.count``, atomic
on every build.
"""

from __future__ import annotations

import sys


CELL_COUNTING: bool = getattr(sys, "_is_gil_enabled", lambda: True)()
"""Whether a closure cell's ``+= 1`` is atomic here (read at decoration)."""
