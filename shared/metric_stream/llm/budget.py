"""A job's LLM token budget, shared by the chains of one job (they run in threads).

Before each step a chain reserves what the step may cost at most (its prompt estimate
plus `max_tokens`); a step that does not fit is not sent. After the answer the
reservation is settled with what was spent. Chains running at once therefore never
take the job over its limit together.
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
        self._reserved = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenBudget(limit={self.limit!r}, used={self.used})"

    def spend(self, tokens: int) -> None:
        if tokens < 0:
            raise ValueError("cannot spend a negative number of tokens")
        with self._lock:
            self._used += tokens

    def reserve(self, tokens: int) -> bool:
        """Hold `tokens` for a step about to run; False when they do not fit."""
        if tokens < 0:
            raise ValueError("cannot reserve a negative number of tokens")
        with self._lock:
            if self.limit is not None and self._used + self._reserved + tokens > self.limit:
                return False
            self._reserved += tokens
            return True

    def settle(self, reserved: int, spent: int) -> None:
        """Release a reservation and count what the step really spent."""
        if reserved < 0 or spent < 0:
            raise ValueError("cannot settle negative tokens")
        with self._lock:
            self._reserved = max(self._reserved - reserved, 0)
            self._used += spent

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
