"""A job's LLM token budget, shared by the chains of one job (they may run in threads).

The chain checks it before each step, so a job can go over its limit by one step's tokens.
"""

from __future__ import annotations

import threading


class TokenBudget:
    """Tokens spent so far against an optional limit (`None`: no limit)."""

    def __init__(self, limit: int | None) -> None:
        if limit is not None and limit < 0:
            raise ValueError("a token budget cannot be negative")
        self.limit = limit
        self._used = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenBudget(limit={self.limit!r}, used={self.used})"

    def spend(self, tokens: int) -> None:
        if tokens < 0:
            raise ValueError("cannot spend a negative number of tokens")
        with self._lock:
            self._used += tokens

    @property
    def used(self) -> int:
        with self._lock:
            return self._used

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.used, 0)

    @property
    def exhausted(self) -> bool:
        return self.limit is not None and self.used >= self.limit
