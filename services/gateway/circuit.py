"""A circuit breaker per upstream: stop sending to a service that keeps failing, then probe it.

Closed: every call goes through; ``failure_threshold`` consecutive failures open the circuit.
Open: calls are refused at once (the gateway answers 503) until ``reset_seconds`` have passed.
Half-open: one trial call at a time goes through; its success closes the circuit, its failure
opens it again for another ``reset_seconds``.

Domain-pure: no HTTP, no asyncio; time comes from the injected ``clock`` (monotonic seconds).
The gateway runs one event loop per process, so no locking is needed.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable

Clock = Callable[[], float]


class CircuitState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    def __init__(
        self,
        failure_threshold: int = 5,
        reset_seconds: float = 10.0,
        clock: Clock = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if reset_seconds <= 0:
            raise ValueError("reset_seconds must be positive")
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self._trial_in_flight or self._clock() - self._opened_at >= self.reset_seconds:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def retry_after(self) -> float:
        """Seconds until a trial call will be let through (0 when calls go through now)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self.reset_seconds - self._clock())

    def allow(self) -> bool:
        """May a call go out now? In half-open, ``True`` claims the single trial slot."""
        if self._opened_at is None:
            return True
        if self._trial_in_flight or self._clock() - self._opened_at < self.reset_seconds:
            return False
        self._trial_in_flight = True
        return True

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_in_flight = False

    def record_failure(self) -> None:
        if self._opened_at is not None:
            # The half-open trial failed (or a call let through before opening): wait again.
            self._opened_at = self._clock()
            self._trial_in_flight = False
            return
        self._failures += 1
        if self._failures >= self.failure_threshold:
            self._opened_at = self._clock()

    def release(self) -> None:
        """A call that ``allow`` let through ended with neither verdict (e.g. it was cancelled)."""
        self._trial_in_flight = False
