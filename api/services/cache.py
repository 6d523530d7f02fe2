"""A small TTL cache for read results, cleared whenever the API writes."""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Any

from api.services.metrics import cache_lookup


class TTLCache:
    """``get``/``put`` with a time-to-live; ``ttl_s <= 0`` disables caching.

    Entries are keyed by everything that decides the answer (e.g. user, k, genre and the
    active run id), so a new active run never serves old rows; writes call :meth:`clear`.
    """

    def __init__(self, ttl_s: float, max_entries: int = 50_000):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._data: dict[Hashable, tuple[float, Any]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Any | None:
        if self.ttl_s <= 0:
            return None
        hit = self._data.get(key)
        kind = str(key[0]) if isinstance(key, tuple) and key else "other"
        if hit is None or hit[0] < time.monotonic():
            self.misses += 1
            cache_lookup(kind, hit=False)
            return None
        self.hits += 1
        cache_lookup(kind, hit=True)
        return hit[1]

    def put(self, key: Hashable, value: Any) -> None:
        if self.ttl_s <= 0:
            return
        if len(self._data) >= self.max_entries:
            now = time.monotonic()
            self._data = {k: v for k, v in self._data.items() if v[0] >= now}
            if len(self._data) >= self.max_entries:
                self._data.clear()
        self._data[key] = (time.monotonic() + self.ttl_s, value)

    def clear(self) -> None:
        self._data.clear()
