"""The integer searches behind every 'largest that fits' answer are exact."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kvplan.core.search import largest_true, smallest_true


@given(threshold=st.integers(1, 10**15), guess=st.integers(1, 10**6))
def test_largest_true_finds_the_exact_threshold(threshold, guess):
    assert largest_true(lambda n: n <= threshold, 1, guess) == threshold


@given(threshold=st.integers(1, 10**9), limit=st.integers(1, 10**9))
def test_smallest_true_respects_the_limit(threshold, limit):
    expected = threshold if threshold <= limit else None
    assert smallest_true(lambda n: n >= threshold, limit) == expected
