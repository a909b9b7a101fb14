"""Exact integer searches over monotone predicates (galloping, then bisection).

The solvers ask "largest context that fits" or "smallest batch where KV traffic overtakes
weights": both are monotone in an integer, so an exponential probe brackets the answer and
bisection pins it exactly, in O(log n) predicate calls.
"""

from __future__ import annotations

from collections.abc import Callable


def largest_true(ok: Callable[[int], bool], lo: int, guess: int) -> int:
    """Largest n >= lo with ok(n), given ok(lo) and ok true-then-false (guess: a first hi)."""
    hi = max(guess, lo + 1)
    while ok(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo


def smallest_true(ok: Callable[[int], bool], limit: int) -> int | None:
    """Smallest n in [1, limit] with ok(n), for ok false-then-true; None if none."""
    if ok(1):
        return 1
    if not ok(limit):
        return None
    return largest_true(lambda n: not ok(n), 1, 2) + 1
