"""A token bucket that also counts what it refused in a spell: the supervisor's events and the host's logs use it."""

from __future__ import annotations

import threading
import time


class RateLimit:
    """A token bucket: ``take`` is True while events stay within ``rate`` a second after a burst of ``burst``."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = float(burst), time.monotonic()
        self.refused = 0
        self._lock = threading.Lock()

    def take(self) -> tuple[bool, int]:
        """(allowed, events refused in the spell that just ended or is going on: 1 on the first refusal)."""
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                refused, self.refused = self.refused, 0
                return True, refused
            self.refused += 1
            return False, self.refused
