"""A small TTL cache for read results, cleared whenever the API writes."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from api.services.metrics import cache_lookup

log = logging.getLogger(__name__)

#: How long past its TTL an entry may still be served by :meth:`TTLCache.lookup` while it is
#: read again in the background, in TTLs.
STALE_TTLS = 4

#: An entry lives between ``(1 - TTL_JITTER)`` and one TTL (drawn when it is stored), so entries
#: stored together (a warm-up, a burst of first requests) do not all expire, and queue their
#: background reads, in the same instant.
TTL_JITTER = 0.25

#: Keys one background read takes at most (the rest wait for the next): a read's rows are
#: decoded on the event loop, about 0.4 ms per user's precomputed rows, so a read of
#: hundreds of keys paused every request for 100-600 ms, and one of 64 for about 30 ms
#: (issue 14 item 7).
REFRESH_CHUNK = 16

#: ``read(keys) -> {key: value}`` of :meth:`TTLCache.refresh_many`.
Reader = Callable[[list[Hashable]], Awaitable[dict[Hashable, Any]]]


_EMPTY: dict[Hashable, tuple[float, Any]] = {}


def _kind(key: Hashable) -> str:
    return str(key[0]) if isinstance(key, tuple) and key else "other"


class TTLCache:
    """``get``/``put`` with a time-to-live; ``ttl_s <= 0`` disables caching.

    Entries are keyed by everything that decides the answer (e.g. user, k, genre and the
    active run id), so a new active run never serves old rows; writes call :meth:`clear`.

    :meth:`lookup` and :meth:`peek` add stale-while-revalidate: an entry up to
    ``STALE_TTLS`` TTLs past its expiry is still returned while it is read again in the
    background, so a request never waits for a read of something the cache held (under load a
    long wait: a read needs several turns of an event loop shared with the other requests).
    """

    def __init__(self, ttl_s: float, max_entries: int = 50_000):
        self.ttl_s = ttl_s
        self.max_entries = max_entries  # per kind of entry
        # kind (a key's first part) -> key -> (expiry, value), oldest stored first
        self._data: dict[str, dict[Hashable, tuple[float, Any]]] = {}
        self.hits = 0
        self.misses = 0
        self._generation = 0  # bumped by clear(): a refresh begun before it is not stored
        self._refreshing: set[Hashable] = set()  # keys queued or being read
        self._pending: dict[Hashable, list[Hashable]] = {}  # queue -> keys to read next
        self._tasks: dict[Hashable, asyncio.Task[None]] = {}  # queue -> its running reader

    def get(self, key: Hashable) -> Any | None:
        if self.ttl_s <= 0:
            return None
        kind = _kind(key)
        hit = self._data.get(kind, _EMPTY).get(key)
        if hit is None or hit[0] < time.monotonic():
            self.misses += 1
            cache_lookup(kind, hit=False)
            return None
        self.hits += 1
        cache_lookup(kind, hit=True)
        return hit[1]

    def peek(self, key: Hashable) -> tuple[Any | None, bool]:
        """``(value, stale)``: the value (None: a miss) and whether it is past its TTL and
        should be read again (see :meth:`refresh_many`)."""
        if self.ttl_s <= 0:
            return None, False
        kind = _kind(key)
        hit = self._data.get(kind, _EMPTY).get(key)
        now = time.monotonic()
        if hit is None or now > hit[0] + STALE_TTLS * self.ttl_s:
            self.misses += 1
            cache_lookup(kind, hit=False)
            return None, False
        self.hits += 1
        cache_lookup(kind, hit=True)
        return hit[1], now > hit[0]

    def lookup(self, key: Hashable, read: Reader, *, queue: Hashable) -> Any | None:
        """:meth:`peek`, a stale entry read again in the background by ``read`` (with every
        key queued on ``queue`` meanwhile, see :meth:`refresh_many`)."""
        value, stale = self.peek(key)
        if stale:
            self.refresh_many([key], read, queue=queue)
        return value

    def put(self, key: Hashable, value: Any, *, spread: bool = False) -> None:
        """Store ``value`` for ``(1 - TTL_JITTER)`` to one TTL; ``spread``: for up to one TTL
        (a warm-up's entries: stored in one instant, they then expire evenly over a TTL, not
        all within its last quarter, whose background reads took the event loop from the
        requests for 100-600 ms at a time)."""
        if self.ttl_s <= 0:
            return
        kind = _kind(key)
        data = self._data.get(kind)
        if data is None:
            data = self._data[kind] = {}
        elif data.pop(key, None) is None and len(data) >= self.max_entries:
            self._evict(kind)
            data = self._data[kind]
        jitter = 1.0 if spread else TTL_JITTER
        life = self.ttl_s * (1.0 - jitter * random.random())
        data[key] = (time.monotonic() + life, value)  # stored last: the newest

    def _evict(self, kind: str) -> None:
        """Make room in a full kind: its oldest stored quarter goes (in place: rebuilding a
        dict of 50,000 entries paused the event loop for 150 ms). Only that kind's: a flood
        of one-off answers (every rules request its own key) once emptied the whole cache,
        and the users' rows it held were all read again at once, stalling the API for
        300 ms (issue 14)."""
        data = self._data[kind]
        for key in list(itertools.islice(data, len(data) - self.max_entries * 3 // 4)):
            del data[key]

    def clear(self) -> None:
        self._data.clear()
        self._generation += 1

    def refresh_many(self, keys: list[Hashable], read: Reader, *, queue: Hashable) -> None:
        """Read ``keys`` again in the background. Keys already queued or being read are left
        out; one reader per ``queue`` runs at a time and takes the keys queued meanwhile, up to
        ``REFRESH_CHUNK``, in its next ``read(keys)`` (so concurrent requests coalesce into
        few reads, none long enough to stall the event loop). Values are
        stored unless None, or unless :meth:`clear` ran during the read."""
        todo = [key for key in dict.fromkeys(keys) if key not in self._refreshing]
        if not todo:
            return
        self._refreshing.update(todo)
        self._pending.setdefault(queue, []).extend(todo)
        if queue not in self._tasks:
            task = asyncio.get_running_loop().create_task(self._drain(queue, read))
            self._tasks[queue] = task  # a strong reference until it ends

    async def _drain(self, queue: Hashable, read: Reader) -> None:
        try:
            while pending := self._pending.get(queue):
                todo, rest = pending[:REFRESH_CHUNK], pending[REFRESH_CHUNK:]
                if rest:
                    self._pending[queue] = rest
                else:
                    del self._pending[queue]
                generation = self._generation
                try:
                    values = await read(todo)
                    if generation == self._generation:
                        for key, value in values.items():
                            if value is not None:
                                self.put(key, value)
                except Exception:  # noqa: BLE001 - a later lookup queues them again
                    log.warning("background refresh of %d entries failed", len(todo), exc_info=True)
                finally:
                    self._refreshing.difference_update(todo)
        finally:
            del self._tasks[queue]
