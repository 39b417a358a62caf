"""Token-bucket (GCRA) rate limits, in memory with an injected clock and in real Redis."""

from __future__ import annotations

import uuid

import pytest

from services.gateway.rate_limit import MemoryRateLimiter, Quota, RedisRateLimiter, gcra

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
