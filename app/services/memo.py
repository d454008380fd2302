"""Memo cache: values computed once per key, even when several views ask at once."""
from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any


class Memo:
    """Thread-safe compute-once map: concurrent requests for one key wait for the first computation
    instead of repeating it; different keys compute in parallel.

    ``store``: where the values live, a dict (default, unbounded) or anything with ``get(key)`` and
    ``put(key, value)`` such as :class:`app.services.models.LRUCache` (bounded). None is never cached.
    """

    def __init__(self, store: Any = None) -> None:
        self.store = {} if store is None else store
        self._put = getattr(self.store, "put", None) or self.store.__setitem__
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The value of ``key``, computed by ``compute()`` on first use."""
        with self._guard:
            value = self.store.get(key)
            if value is not None:
                return value
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                value = self.store.get(key)
            if value is None:
                value = compute()
                with self._guard:
                    self._put(key, value)
            with self._guard:
                self._locks.pop(key, None)
            return value

    def peek(self, key: Hashable) -> Any | None:
        """The value of ``key`` if already computed, else None (computes nothing)."""
        with self._guard:
            return self.store.get(key)
