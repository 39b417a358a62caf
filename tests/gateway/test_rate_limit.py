"""Token-bucket (GCRA) rate limits, in memory with an injected clock and in real Redis."""

from __future__ import annotations

import uuid

import pytest

from services.gateway.rate_limit import MemoryRateLimiter, Quota, RedisRateLimiter, gcra
from services.gateway.upstream import costly_route

pytestmark = pytest.mark.anyio
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_allows_its_burst_then_refuses() -> None:
    quota = Quota(rate_per_minute=60, burst=3)
    tat = None
    remaining = []
    for _ in range(3):
        decision, tat = gcra(tat, 100.0, quota)
        assert decision.allowed
        remaining.append(decision.remaining)
    assert remaining == [2, 1, 0]
    refused, unchanged = gcra(tat, 100.0, quota)
    assert not refused.allowed and unchanged is None
    assert refused.retry_after_seconds == pytest.approx(1.0)
    assert refused.headers()["Retry-After"] == "1"


async def test_tokens_come_back_at_the_rate() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    quota = Quota(rate_per_minute=60, burst=2)
    assert (await limiter.hit("k", quota)).allowed
    assert (await limiter.hit("k", quota)).allowed
    assert not (await limiter.hit("k", quota)).allowed
    clock.now += 0.5
    assert not (await limiter.hit("k", quota)).allowed
    clock.now += 0.5
    assert (await limiter.hit("k", quota)).allowed
    clock.now += 60
    decision = await limiter.hit("k", quota)
    assert decision.allowed and decision.remaining == 1, "a rested bucket is full, not more"


async def test_keys_have_separate_buckets() -> None:
    limiter = MemoryRateLimiter(Clock())
    quota = Quota(rate_per_minute=60, burst=1)
    assert (await limiter.hit("a", quota)).allowed
    assert (await limiter.hit("b", quota)).allowed
    assert not (await limiter.hit("a", quota)).allowed


def test_headers_follow_the_ratelimit_fields() -> None:
    decision, _ = gcra(None, 0.0, Quota(rate_per_minute=120, burst=10))
    headers = decision.headers()
    assert headers["RateLimit-Limit"] == "10"
    assert headers["RateLimit-Remaining"] == "9"
    assert headers["RateLimit-Reset"] == "1"
    assert "Retry-After" not in headers


async def test_redis_replicas_share_one_bucket() -> None:
    clock = Clock(now=1_700_000_000.0)
    first = RedisRateLimiter(REDIS_URL, prefix=f"pm-test-{uuid.uuid4().hex}:", clock=clock)
    second = RedisRateLimiter(REDIS_URL, prefix=first._prefix, clock=clock)
    quota = Quota(rate_per_minute=60, burst=3)
    try:
        results = [
            (await limiter.hit("key", quota)).allowed for limiter in (first, second, first, second)
        ]
        assert results == [True, True, True, False]
        clock.now += 1.0
        decision = await second.hit("key", quota)
        assert decision.allowed and decision.remaining == 0
        refused = await first.hit("key", quota)
        assert not refused.allowed
        assert refused.retry_after_seconds == pytest.approx(1.0, abs=1e-6)
    finally:
        await first.aclose()
        await second.aclose()


def test_a_costly_request_spends_several_tokens() -> None:
    quota = Quota(rate_per_minute=60, burst=10)
    decision, tat = gcra(None, 100.0, quota, cost=4)
    assert decision.allowed and decision.remaining == 6
    decision, tat = gcra(tat, 100.0, quota, cost=4)
    assert decision.allowed and decision.remaining == 2
    refused, unchanged = gcra(tat, 100.0, quota, cost=4)
    assert not refused.allowed and unchanged is None
    # Two tokens are left and four are needed: two more come back in two seconds.
    assert refused.retry_after_seconds == pytest.approx(2.0)
    cheap, _ = gcra(tat, 100.0, quota, cost=1)
    assert cheap.allowed and cheap.remaining == 1, "a refused costly call spent nothing"


@pytest.mark.parametrize("now", [100.0, 32728.185951439325, 2011.0843640587325])
def test_rounding_of_a_large_clock_neither_refuses_nor_undercounts(now: float) -> None:
    """At these clock readings ``now + 60 - now`` and ``now + 100 - 100`` are off by a
    rounding error: the bucket still counts whole tokens."""
    quota = Quota(rate_per_minute=6, burst=10)
    decision, _ = gcra(None, now, quota, cost=6)
    assert decision.allowed and decision.remaining == 4
    whole, tat = gcra(None, now, quota, cost=10)
    assert whole.allowed and whole.remaining == 0, "the whole bucket may be spent at once"
    refused, _ = gcra(tat, now, quota, cost=1)
    assert not refused.allowed


def test_a_cost_above_the_bucket_takes_the_whole_bucket() -> None:
    quota = Quota(rate_per_minute=60, burst=3)
    decision, tat = gcra(None, 100.0, quota, cost=20)
    assert decision.allowed and decision.remaining == 0
    refused, _ = gcra(tat, 100.0, quota, cost=20)
    assert not refused.allowed
    assert refused.retry_after_seconds == pytest.approx(3.0), "until the bucket is full again"


async def test_memory_limiter_charges_the_cost() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    quota = Quota(rate_per_minute=60, burst=5)
    assert (await limiter.hit("k", quota, cost=3)).remaining == 2
    refused = await limiter.hit("k", quota, cost=3)
    assert not refused.allowed and refused.retry_after_seconds == pytest.approx(1.0)
    clock.now += 1.0
    assert (await limiter.hit("k", quota, cost=3)).allowed


@pytest.mark.parametrize("now", [1_700_000_000.0, 1_764_651_234.567891, 32728.185951439325])
async def test_redis_limiter_counts_whole_tokens_at_any_clock_reading(now: float) -> None:
    limiter = RedisRateLimiter(REDIS_URL, prefix=f"pm-test-{uuid.uuid4().hex}:", clock=Clock(now))
    quota = Quota(rate_per_minute=6, burst=10)
    try:
        first = await limiter.hit("key", quota, cost=6)
        assert first.allowed and first.remaining == 4
        last = await limiter.hit("key", quota, cost=4)
        assert last.allowed and last.remaining == 0, "the last tokens may be spent"
        assert not (await limiter.hit("key", quota, cost=1)).allowed
    finally:
        await limiter.aclose()


async def test_redis_limiter_charges_the_cost() -> None:
    clock = Clock(now=1_700_000_000.0)
    limiter = RedisRateLimiter(REDIS_URL, prefix=f"pm-test-{uuid.uuid4().hex}:", clock=clock)
    quota = Quota(rate_per_minute=60, burst=5)
    try:
        first = await limiter.hit("key", quota, cost=3)
        assert first.allowed and first.remaining == 2
        refused = await limiter.hit("key", quota, cost=3)
        assert not refused.allowed
        assert refused.retry_after_seconds == pytest.approx(1.0, abs=1e-6)
        assert (await limiter.hit("key", quota, cost=2)).allowed, "a refusal spent nothing"
        clock.now += 5.0
        whole = await limiter.hit("key", quota, cost=50)
        assert whole.allowed and whole.remaining == 0, "capped at the bucket's size"
    finally:
        await limiter.aclose()


def test_imports_and_rankings_are_the_costly_routes() -> None:
    assert costly_route("/v1/import") == "import"
    for path in (
        "/v1/match",
        "/v1/demands/dmd_1/matches",
        "/v1/platforms/plt_1/similar",
        "/v1/manufacturers/mfr_1/similar",
    ):
        assert costly_route(path) == "match", path
    for path in ("/v1/index", "/v1/demands/dmd_1", "/v1/platforms", "/v1/changes"):
        assert costly_route(path) is None, path
