"""Small key/value caches with a time to live: in-process LRU by default, Redis when shared across processes."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Protocol

import orjson


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
    """The same contract on Redis, for API workers in several processes sharing one cache."""

    def __init__(self, url: str, prefix: str = "pocketstack:") -> None:
        import redis.asyncio as redis_asyncio

        self._redis = redis_asyncio.from_url(url)
        self._prefix = prefix

    async def get(self, key: str) -> Any | None:
        raw = await self._redis.get(self._prefix + key)
        return None if raw is None else orjson.loads(raw)

    async def set(self, key: str, value: Any, ttl: float) -> None:
        await self._redis.set(self._prefix + key, orjson.dumps(value), px=max(1, int(ttl * 1000)))

    async def delete(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)

    async def close(self) -> None:
        await self._redis.aclose()


def make_cache(backend: str, url: str | None, max_size: int) -> Cache:
    if backend == "redis":
        if not url:
            raise ValueError("auth.cache_url is required when auth.cache_backend = 'redis'")
        return RedisCache(url)
    return MemoryCache(max_size)
