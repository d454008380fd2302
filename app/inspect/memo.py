"""Memo cache: derived quantities computed once per inspection, even when several views ask at once."""
from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any


class Memo:
    """Thread-safe compute-once map: concurrent requests for one key wait for the first computation
    instead of repeating it; different keys compute in parallel."""

    def __init__(self) -> None:
        self.values: dict[Hashable, Any] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The value of ``key``, computed by ``compute()`` on first use."""
        with self._guard:
            if key in self.values:
                return self.values[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                if key in self.values:
                    return self.values[key]
            value = compute()
            with self._guard:
                self.values[key] = value
                self._locks.pop(key, None)
            return value

    def peek(self, key: Hashable) -> Any | None:
        """The value of ``key`` if already computed, else None (computes nothing)."""
        with self._guard:
            return self.values.get(key)
