"""A serving workload and how much KV cache its requests hold: the occupancy integral.

A workload is a mix of requests, each an (input, output) length pair in tokens, with an
optional shared prefix (prefix caching) stored once in the pool. Two memory answers:

  guaranteed  every resident request at its full length input + output:
                  N_g = floor(B / mean_i f(in_i + out_i))
              where f(n) = Plan.seq_bytes(n) (block-rounded per-GPU bytes of one sequence)
              and B the KV budget per GPU. For one fixed length this is exactly
              `kvplan fit --ctx IN+OUT` (B // f(IN+OUT)).
  steady      requests are at different points of their life. A request lives `out`
              steps (prefill, then out - 1 decode steps, one step per output token) and
              during step j (j = 0 .. out-1) it holds in + j tokens (f = Plan.held_bytes:
              a vLLM hybrid's sliding groups keep only the window's blocks while
              decoding, fewer than seq_bytes' per-request worst case). With continuous
              arrivals a resident request is equally likely to be at any step, and in a
              mix a request of type i is resident for a share proportional to out_i
              (Little's law: residents = arrival rate x time in system). The mean bytes per
              resident request is the occupancy integral
                  mu = sum_i sum_{j=0}^{out_i - 1} f(in_i + j) / sum_i out_i
              and its variance sigma^2 likewise. C residents then hold a sum with mean
              C mu and (ages independent) variance C sigma^2; the pool overflows
              (the engine preempts) with probability
                  P(C) = 1 - Phi((B - C mu) / (sigma sqrt C)).
              The steady concurrency is the largest C with P(C) <= PREEMPTION_RISK.
Engine limits (max_num_seqs) cap both.

Prefix caching: a shared prefix of P tokens is held once, in whole blocks only
(P_a = floor(P / block) * block tokens); each request then holds f(n) - (f(P_a) - f(0))
(f(0) is the per-sequence fixed state, which is never shared).

Everything is integer bytes and token counts; no I/O here.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import erf, floor, gcd, sqrt

from pydantic import BaseModel, ConfigDict, Field

from kvplan.core import kvcache
from kvplan.core.capacity import Plan
from kvplan.errors import KvplanError

# Accepted chance that the pool overflows at the steady concurrency (a choice, not a fit):
# 1 %, the usual "rare" level; the JSON carries P at every concurrency shown.
PREEMPTION_RISK = 0.01
MAX_LEN = 1 << 30


class LengthPair(BaseModel):
    model_config = ConfigDict(frozen=True)

    input_len: int = Field(gt=0)
    output_len: int = Field(gt=0)
    count: int = Field(default=1, gt=0)  # how many requests of the mix have these lengths


class Workload(BaseModel):
    """A request mix: length pairs with counts, where it came from, a shared prefix."""

    model_config = ConfigDict(frozen=True)

    name: str
    source: str | None = None  # URL / file the shape comes from
    pairs: tuple[LengthPair, ...]
    prefix_len: int = 0  # tokens every request shares (prefix caching)
    notes: tuple[str, ...] = ()

    @property
    def requests(self) -> int:
        return sum(p.count for p in self.pairs)

    @property
    def mean_input(self) -> float:
        return sum(p.input_len * p.count for p in self.pairs) / self.requests

    @property
    def mean_output(self) -> float:
        return sum(p.output_len * p.count for p in self.pairs) / self.requests

    @property
    def is_fixed(self) -> bool:
        return len(self.pairs) == 1


def workload(
    name: str,
    pairs: Sequence[tuple[int, int]] | Sequence[LengthPair],
    *,
    source: str | None = None,
    prefix_len: int = 0,
    notes: Sequence[str] = (),
) -> Workload:
    """Build a workload, merging equal pairs and checking lengths (bad input: exit 2)."""
    counts: dict[tuple[int, int], int] = {}
    for item in pairs:
        if isinstance(item, LengthPair):
            key, n = (item.input_len, item.output_len), item.count
        else:
            key, n = (int(item[0]), int(item[1])), 1
        for value, what in zip(key, ("input", "output"), strict=True):
            if value <= 0:
                raise KvplanError(f"{what} length must be a positive integer, got {value}")
            if value > MAX_LEN:
                raise KvplanError(f"{what} length {value:,} is absurdly large")
        counts[key] = counts.get(key, 0) + n
    if not counts:
        raise KvplanError(f"workload {name!r} has no requests")
    if prefix_len < 0:
        raise KvplanError(f"--prefix-len must be zero or positive, got {prefix_len}")
    shortest = min(i for i, _ in counts)
    if prefix_len > shortest:
        raise KvplanError(
            f"--prefix-len {prefix_len:,} is longer than the shortest input ({shortest:,} tokens)",
            setting="prefix_len",
        )
    return Workload(
        name=name,
        source=source,
        pairs=tuple(LengthPair(input_len=i, output_len=o, count=n) for (i, o), n in counts.items()),
        prefix_len=prefix_len,
        notes=tuple(notes),
    )


# ---- occupancy ---------------------------------------------------------------------------
class Occupancy(BaseModel):
    """Per-GPU bytes the workload's requests hold; every size in bytes, per GPU."""

    model_config = ConfigDict(frozen=True)

    kv_budget: int  # the plan's pool
    shared_prefix_tokens: int  # block-aligned prefix stored once
    shared_prefix_bytes: int
    pool_for_requests: int  # kv_budget - shared_prefix_bytes
    full_bytes_mean: float  # mean over requests of the bytes at full input + output
    full_bytes_max: int  # the longest request at full length
    steady_bytes_mean: float  # mu: the occupancy integral per resident request
    steady_bytes_std: float  # sigma
    mean_context: float  # time-averaged tokens held per resident request (decode context)
    max_concurrency_guaranteed: int
    max_concurrency_mean_fill: int  # floor(pool / mu): the pool is full on average
    max_concurrency_steady: int  # largest C with overflow probability <= PREEMPTION_RISK
    engine_max_num_seqs: int
    capped_by_engine: bool  # max_num_seqs is below what memory allows

    def preemption_probability(self, concurrency: int) -> float:
        """P(sum of `concurrency` residents' bytes > pool), normal approximation."""
        return overflow_probability(
            concurrency, self.steady_bytes_mean, self.steady_bytes_std, self.pool_for_requests
        )


def overflow_probability(c: int, mu: float, sigma: float, pool: int) -> float:
    if c <= 0:
        return 0.0
    mean = c * mu
    if sigma <= 0:
        return 0.0 if mean <= pool else 1.0
    z = (pool - mean) / (sigma * sqrt(c))
    return 0.5 * (1 - erf(z / sqrt(2)))


def _z_for(risk: float) -> float:
    """The standard normal quantile with upper tail `risk` (bisection on erf)."""
    lo, hi = 0.0, 10.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if 0.5 * (1 - erf(mid / sqrt(2))) > risk:
            lo = mid
        else:
            hi = mid
    return hi


class _Sums:
    """Sums of f(n) over token ranges, exact and fast. f(n) = the plan's seq_bytes(n + k)
    (plus a draft model's, with speculative decoding's k lookahead slots) only changes
    where n + k crosses a block boundary (k * block + 1: a new block; a window stops growing
    at a block boundary too, since tokens_held rounds min(n, window) up to blocks), so it
    is constant on each block of n + k. A vLLM hybrid's blocks are its layout's (raised to
    the state page: kvplan.core.hybrid_alloc); with a draft, blocks of the gcd of both."""

    def __init__(
        self, p: Plan, *, draft: Plan | None = None, lookahead: int = 0, peak: bool = False
    ) -> None:
        self.p, self.draft, self.k = p, draft, lookahead
        # peak: Plan.seq_bytes (the engine's per-request count); else Plan.held_bytes (what
        # a decoding sequence holds: they differ only for vLLM hybrids' sliding groups)
        self.peak = peak
        if draft is not None and draft.deployment.block_size != p.deployment.block_size:
            raise KvplanError("the draft model must use the same --block-size")
        plans = [p] if draft is None else [p, draft]
        self.block = gcd(
            *(q.hybrid.block_size if q.hybrid else q.deployment.block_size for q in plans)
        )
        self._f: dict[int, int] = {}
        self._c1: list[int] = [0]  # _c1[j]: sum of g over the tokens of blocks 1..j
        self._c2: list[int] = [0]

    def shared(self, tokens: int) -> int:
        """Bytes of a `tokens`-long shared prefix (whole blocks, no lookahead, no state)."""
        if not tokens:
            return 0
        plans = [self.p] if self.draft is None else [self.p, self.draft]
        return sum(self._bytes(q, tokens) - self._bytes(q, 0) for q in plans)

    def _bytes(self, q: Plan, tokens: int) -> int:
        return q.seq_bytes(tokens) if self.peak else q.held_bytes(tokens)

    def _blocks(self, n: int) -> int:
        m = n + self.k
        return -(-m // self.block) if m > 0 else 0

    def _g(self, j: int) -> int:
        """Bytes of a sequence holding j blocks (target + draft)."""
        if j not in self._f:
            tokens = j * self.block
            extra = self._bytes(self.draft, tokens) if self.draft is not None else 0
            self._f[j] = self._bytes(self.p, tokens) + extra
        return self._f[j]

    def f(self, n: int) -> int:
        return self._g(self._blocks(n))

    def _grow(self, j: int) -> None:
        """Cumulative sums of g and g^2 over whole blocks 1..j (each block = `block` tokens)."""
        while len(self._c1) <= j:
            i = len(self._c1)
            v = self._g(i)
            self._c1.append(self._c1[-1] + self.block * v)
            self._c2.append(self._c2[-1] + self.block * v * v)

    def _prefix(self, m: int) -> tuple[int, int]:
        """(sum g(t), sum g(t)^2) over t = 1 .. m tokens held."""
        if m <= 0:
            return 0, 0
        j = -(-m // self.block)
        self._grow(j - 1)
        v = self._g(j)
        rest = m - (j - 1) * self.block
        return self._c1[j - 1] + rest * v, self._c2[j - 1] + rest * v * v

    def sums(self, lo: int, hi: int) -> tuple[int, int, int]:
        """(sum f(n), sum f(n)^2, sum n) over n in [lo, hi] (lo >= 1): differences of
        prefix sums over whole blocks, O(1) per range once the blocks are tabulated."""
        a1, a2 = self._prefix(lo - 1 + self.k)
        b1, b2 = self._prefix(hi + self.k)
        s1, s2 = b1 - a1, b2 - a2
        return s1, s2, (lo + hi) * (hi - lo + 1) // 2


def occupancy(
    p: Plan,
    w: Workload,
    *,
    risk: float = PREEMPTION_RISK,
    max_seqs: int | None = None,
    draft: Plan | None = None,
    lookahead: int = 0,
) -> Occupancy:
    """How many of the workload's requests the plan's KV pool holds (module docstring);
    `max_seqs` replaces the engine's sequence limit (default: the deployment's).
    Speculative decoding: `draft` (the draft model on the same deployment) keeps its own KV
    for every sequence in the same pool, and each sequence holds `lookahead` extra slots
    for the proposed tokens (the plan's budget must already count the draft's weights)."""
    sums = _Sums(p, draft=draft, lookahead=lookahead)
    peak = _Sums(p, draft=draft, lookahead=lookahead, peak=True)
    block = p.deployment.block_size
    shared_tokens = (w.prefix_len // block) * block
    shared = sums.shared(shared_tokens)
    pool = p.budget.kv_budget - shared
    full_total = 0
    full_max = 0
    s1 = s2 = ctx_sum = 0
    steps = 0
    for pair in w.pairs:
        full = peak.f(pair.input_len + pair.output_len) - shared
        full_total += full * pair.count
        full_max = max(full_max, full)
        a, b, c = sums.sums(pair.input_len, pair.input_len + pair.output_len - 1)
        n = pair.output_len
        # private bytes: f - shared, summed over the life's n steps
        s1 += (a - shared * n) * pair.count
        s2 += (b - 2 * shared * a + shared * shared * n) * pair.count
        ctx_sum += c * pair.count
        steps += n * pair.count
    mu = s1 / steps
    var = max(0.0, s2 / steps - mu * mu)
    sigma = sqrt(var)
    full_mean = full_total / w.requests
    seqs = max_seqs or p.deployment.scheduler_seqs
    if pool <= 0 or mu <= 0:
        guaranteed = mean_fill = steady = 0 if pool <= 0 else seqs
    else:
        guaranteed = floor(pool / full_mean) if full_mean > 0 else seqs
        if w.is_fixed:  # exactly `fit`: integer division of integers
            guaranteed = pool // int(full_mean) if full_mean else seqs
        mean_fill = floor(pool / mu)
        z = _z_for(risk)
        # largest C with C mu + z sigma sqrt(C) <= pool: a quadratic in sqrt(C)
        root = (-z * sigma + sqrt(z * z * var + 4 * mu * pool)) / (2 * mu)
        steady = max(0, floor(root * root))
        while steady > 0 and overflow_probability(steady, mu, sigma, pool) > risk:
            steady -= 1
        while overflow_probability(steady + 1, mu, sigma, pool) <= risk:
            steady += 1
        steady = max(steady, guaranteed)  # at full length every request fits for sure
    memory_limit = max(guaranteed, steady)
    return Occupancy(
        kv_budget=p.budget.kv_budget,
        shared_prefix_tokens=shared_tokens,
        shared_prefix_bytes=shared,
        pool_for_requests=pool,
        full_bytes_mean=full_mean,
        full_bytes_max=full_max,
        steady_bytes_mean=mu,
        steady_bytes_std=sigma,
        mean_context=ctx_sum / steps,
        max_concurrency_guaranteed=min(guaranteed, seqs),
        max_concurrency_mean_fill=min(mean_fill, seqs),
        max_concurrency_steady=min(steady, seqs),
        engine_max_num_seqs=seqs,
        capped_by_engine=memory_limit > seqs,
    )


# ---- host (CPU) offload tier --------------------------------------------------------------
class HostTier(BaseModel):
    model_config = ConfigDict(frozen=True)

    bytes: int  # host memory given to the KV offload tier, for the whole replica
    block_bytes: int  # one block of all layers on all GPUs of the replica
    blocks: int
    tokens: int  # tokens it holds after page alignment
    prompts_held: float  # mean-length prompts (beyond the shared prefix) it holds


def host_tier(p: Plan, w: Workload, size: int) -> HostTier:
    """Tokens a CPU offload tier of `size` bytes holds: whole blocks of every layer's
    cache of the replica (per-GPU heads x TP GPUs, all PP stages), floor(size / block)."""
    d = p.deployment
    per_token = kvcache.kv_bytes_per_token(d.spec, d.kv_dtype, kv_heads=p.kv_heads_per_gpu) * d.tp
    block_bytes = per_token * d.block_size
    blocks = size // block_bytes if block_bytes else 0
    tokens = blocks * d.block_size
    private = max(1.0, w.mean_input - (w.prefix_len // d.block_size) * d.block_size)
    return HostTier(
        bytes=size,
        block_bytes=block_bytes,
        blocks=blocks,
        tokens=tokens,
        prompts_held=tokens / private,
    )
