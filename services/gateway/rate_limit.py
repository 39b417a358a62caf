"""Per-key rate limits: a token bucket, computed as GCRA (the generic cell rate algorithm).

GCRA keeps one number per key, the "theoretical arrival time" (TAT), and is exactly a token
bucket of ``burst`` tokens refilled at ``rate_per_minute``. In memory by default; in Redis when
``REDIS_URL`` is set, so gateway replicas share one limit (one Lua script, atomic per key).
The clock is injected so tests can move time. Plain Python, no HTTP.

A request may cost more than one token (``cost``): an import or a match spends several, so a
key's budget buys fewer of those than of plain reads. A cost above the bucket's size is charged
as the whole bucket, so an expensive call is still possible on a small quota, just not twice in
a row.

(The ``limits`` package offers fixed and sliding windows, not a token bucket, so the ~20 lines
of GCRA are written here.)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Quota:
    rate_per_minute: int
    burst: int

    @property
    def interval(self) -> float:
        """Seconds for one token to come back."""
        return 60.0 / self.rate_per_minute


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: float  # until the bucket is full again
    retry_after_seconds: float  # 0 when allowed

    def headers(self) -> dict[str, str]:
        """IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers), plus Retry-After."""
        out = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(math.ceil(self.reset_seconds)),
        }
        if not self.allowed:
            out["Retry-After"] = str(max(1, math.ceil(self.retry_after_seconds)))
        return out


_TOLERANCE = 1e-5
"""Seconds within which two bucket times count as equal: well above the rounding error of a
wall-clock reading (about 2e-7 s near 1.7e9), well below any token's interval."""


def charged(quota: Quota, cost: int) -> int:
    """Tokens a request of ``cost`` takes: at least one, at most the whole bucket."""
    return min(max(cost, 1), quota.burst)


def gcra(
    tat: float | None, now: float, quota: Quota, cost: int = 1
) -> tuple[Decision, float | None]:
    """One request of ``cost`` tokens against a bucket: the decision and the new TAT (None:
    leave it unchanged)."""
    interval = quota.interval
    capacity = quota.burst * interval
    tat = now if tat is None or tat < now else tat
    new_tat = tat + interval * charged(quota, cost)
    allow_at = new_tat - capacity
    # Times are floats of a large clock (now + 60 - now may be 60.000000000004): compared
    # with a tolerance, so that a request taking the last token is not refused and the
    # tokens left are not under-counted by a rounding error.
    if allow_at - now > _TOLERANCE:
        return (
            Decision(False, quota.burst, 0, tat - now, allow_at - now),
            None,
        )
    remaining = math.floor((capacity - (new_tat - now) + _TOLERANCE) / interval)
    return Decision(True, quota.burst, max(remaining, 0), new_tat - now, 0.0), new_tat


class RateLimiter(Protocol):
    async def hit(self, key: str, quota: Quota, cost: int = 1) -> Decision: ...

    async def aclose(self) -> None: ...


class MemoryRateLimiter:
    """One process's buckets. Keys are API-key ids, so the dict stays as small as the key count."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tat: dict[str, float] = {}

    async def hit(self, key: str, quota: Quota, cost: int = 1) -> Decision:
        decision, new_tat = gcra(self._tat.get(key), self._clock(), quota, cost)
        if new_tat is not None:
            self._tat[key] = new_tat
        return decision

    async def aclose(self) -> None:
        return None


# KEYS[1] bucket; ARGV: now, interval, capacity, tokens this request takes.
# Returns {allowed, remaining, reset, retry}.
_GCRA_LUA = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local capacity = tonumber(ARGV[3])
local tokens = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval * tokens
local allow_at = new_tat - capacity
if allow_at - now > 1e-5 then
  return {0, 0, tostring(tat - now), tostring(allow_at - now)}
end
local ttl = math.ceil((new_tat - now) * 1000)
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', ttl)
local remaining = math.floor((capacity - (new_tat - now) + 1e-5) / interval)
return {1, remaining, tostring(new_tat - now), '0'}
"""


class RedisRateLimiter:
    """Buckets shared by every gateway replica through Redis (wall-clock time, atomic script)."""

    def __init__(
        self, url: str, prefix: str = "pilotmatch:rl:", clock: Callable[[], float] = time.time
    ) -> None:
        import redis.asyncio as redis

        self._redis: Any = redis.from_url(url)
        self._script = self._redis.register_script(_GCRA_LUA)
        self._prefix = prefix
        self._clock = clock

    async def hit(self, key: str, quota: Quota, cost: int = 1) -> Decision:
        interval = quota.interval
        allowed, remaining, reset, retry = await self._script(
            keys=[self._prefix + key],
            args=[
                repr(self._clock()),
                repr(interval),
                repr(quota.burst * interval),
                str(charged(quota, cost)),
            ],
        )
        return Decision(
            bool(allowed), quota.burst, max(int(remaining), 0), float(reset), float(retry)
        )

    async def aclose(self) -> None:
        await self._redis.aclose()
