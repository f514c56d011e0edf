"""Small key/value caches with a time to live: in-process LRU by default, Redis when shared across processes."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any, Protocol

import orjson

log = logging.getLogger("pocketstack.cache")


class Cache(Protocol):
    async def get(self, key: str) -> Any | None: ...
    async def set(self, key: str, value: Any, ttl: float) -> None: ...
    async def delete(self, key: str) -> None: ...
    async def close(self) -> None: ...


class MemoryCache:
    """LRU with a per-entry deadline; bounded so it cannot grow with the number of tokens seen."""

    def __init__(self, max_size: int = 10000) -> None:
        self.max_size = max_size
        self._data: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    def get_now(self, key: str) -> Any | None:
        item = self._data.get(key)
        if item is None:
            return None
        deadline, value = item
        if deadline < time.monotonic():
            self._data.pop(key, None)
            return None
        self._data.move_to_end(key)
        return value

    def set_now(self, key: str, value: Any, ttl: float) -> None:
        self._data[key] = (time.monotonic() + ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self.max_size:
            self._data.popitem(last=False)

    async def get(self, key: str) -> Any | None:
        return self.get_now(key)

    async def set(self, key: str, value: Any, ttl: float) -> None:
        self.set_now(key, value, ttl)

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    async def close(self) -> None:
        self._data.clear()


class RedisCache:
    """The same contract on Redis, for API workers in several processes sharing one cache.

    Redis unreachable is a cache that remembers nothing (a miss on every get, a warning now and then), not a
    failing request: the caller does the work the cache would have saved."""

    def __init__(self, url: str, prefix: str = "pocketstack:", socket_timeout: float = 1.0) -> None:
        import redis.asyncio as redis_asyncio
        from redis.exceptions import RedisError

        self._redis = redis_asyncio.from_url(url, socket_timeout=socket_timeout,
                                             socket_connect_timeout=socket_timeout)
        self._prefix = prefix
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError)
        self._warned_at = 0.0

    def _unavailable(self, exc: BaseException) -> None:
        if time.monotonic() - self._warned_at > 30:
            self._warned_at = time.monotonic()
            log.warning("the Redis cache is unavailable (%s); going on without it", exc.__class__.__name__)

    async def get(self, key: str) -> Any | None:
        try:
            raw = await self._redis.get(self._prefix + key)
        except self._errors as exc:
            self._unavailable(exc)
            return None
        return None if raw is None else orjson.loads(raw)

    async def set(self, key: str, value: Any, ttl: float) -> None:
        try:
            await self._redis.set(self._prefix + key, orjson.dumps(value), px=max(1, int(ttl * 1000)))
        except self._errors as exc:
            self._unavailable(exc)

    async def delete(self, key: str) -> None:
        try:
            await self._redis.delete(self._prefix + key)
        except self._errors as exc:
            self._unavailable(exc)

    async def close(self) -> None:
        await self._redis.aclose()


def make_cache(backend: str, url: str | None, max_size: int) -> Cache:
    if backend == "redis":
        if not url:
            raise ValueError("auth.cache_url is required when auth.cache_backend = 'redis'")
        return RedisCache(url)
    return MemoryCache(max_size)
