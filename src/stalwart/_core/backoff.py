"""
Pure backoff arithmetic: how long to wait before retry number *n*.

Every function takes the attempt that just failed (``1`` for the first
call), the configuration, and, where randomness is involved, a uniform draw
*u* made by the caller, so tests control it.  Every result is finite, never
negative and never above *cap*, jitter included, at any attempt number (no
``OverflowError`` at attempt 10,000) and whatever the draw: a draw outside
``[0, 1]`` (a misbehaving jitter source) is brought back into it first.
"""

from __future__ import annotations


# Jitter kinds.  A positive float instead means "+/- that fraction".
NONE = "none"
FULL = "full"
EQUAL = "equal"

LONGEST_WAIT = 1e9
"""The longest wait, in seconds (about 31.7 years): every platform's
blocking sleep takes it, where a longer one may overflow (``time.sleep``
refuses about 9.2e9 s on Linux)."""


def clamp(delay: float, cap: float) -> float:
    """
    Bring *delay* into ``[0, cap]``; ``NaN`` counts as ``0``.
    """
    if not delay > 0.0:  # also catches NaN
        return 0.0
    # min() first: an int too large for a float compares fine.
    return float(min(delay, cap))


def unit(u: float) -> float:
    """
    Bring a uniform draw into ``[0, 1]``; ``NaN`` counts as ``0``.
    """
    if not u > 0.0:  # also catches NaN
        return 0.0
    return min(u, 1.0)


def constant(delay: float, cap: float) -> float:
    """
    Always *delay*, capped.
    """
    return clamp(delay, cap)


def linear(
    attempt: int, initial: float, increment: float, cap: float
) -> float:
    """
    ``initial + increment * (attempt - 1)``, capped.
    """
    return clamp(initial + increment * (attempt - 1), cap)


def exponential(
    attempt: int, initial: float, multiplier: float, cap: float
) -> float:
    """
    ``initial * multiplier ** (attempt - 1)``, capped, without overflowing.
    """
    if initial <= 0.0:
        return 0.0
    try:
        raw = initial * multiplier ** (attempt - 1)
    except OverflowError:
        # The power left the float range, so it is far above any cap.
        return clamp(cap, cap)
    return clamp(raw, cap)


def decorrelated(
    previous: float, initial: float, multiplier: float, cap: float, u: float
) -> float:
    """
    Decorrelated jitter: uniform in ``[initial, previous * multiplier]``,
    that range capped first so the draws spread below *cap* rather than
    pile up on it.

    *previous* is the delay waited before (``0`` before the first retry,
    which then draws from ``[initial, initial * multiplier]``).
    """
    # An overflow to inf is harmless here: min() brings it back to cap.
    high = min(max(previous, initial) * multiplier, cap)
    return clamp(initial + unit(u) * (high - initial), cap)


def jitter(delay: float, kind: str | float, cap: float, u: float) -> float:
    """
    Apply a jitter *kind* to a *delay* already within ``[0, cap]``.

    ``"none"`` keeps it, ``"full"`` draws from ``[0, delay]``, ``"equal"``
    from ``[delay / 2, delay]``, and a fraction *f* from
    ``[delay * (1 - f), delay * (1 + f)]``, capped.
    """
    if kind == NONE:
        return delay
    u = unit(u)
    if kind == FULL:
        return delay * u
    if kind == EQUAL:
        return delay * (0.5 + 0.5 * u)
    if isinstance(kind, float | int):
        return clamp(delay * (1.0 + kind * (2.0 * u - 1.0)), cap)
    raise AssertionError("unreachable")  # kinds are validated at build
