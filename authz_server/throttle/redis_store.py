"""Quota leased from Redis, shared by every authz_server replica.

One counter per (quota, window) in Redis holds how many calls all replicas together have
been granted. A replica asks for a lease of a few calls at a time; a Lua script grants
at most what is left under the limit, atomically, so the replicas together never admit
more than the limit. One pipeline carries every lease a replica needs at that moment.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

import redis

KEY_PREFIX = "portcullis:throttle:"
# Keys outlive their window a little, for clocks a little apart between replicas.
EXPIRY_MARGIN_SECONDS = 60

# KEYS[1]: the counter; ARGV: limit, calls wanted, expiry (unix ms). Returns {granted, used}:
# `used` is everything granted in this window so far, this grant included.
_GRANT = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local grant = math.min(tonumber(ARGV[2]), tonumber(ARGV[1]) - used)
if grant > 0 then
  used = redis.call('INCRBY', KEYS[1], grant)
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
else
  grant = 0
end
return {grant, used}
"""


class StoreUnavailable(Exception):
    """Redis could not be reached or did not answer in time."""


@dataclass(frozen=True, slots=True)
class LeaseRequest:
    key: str             # the quota's counter key
    window_start: int
    window_end: int
    limit: int
    want: int


@dataclass(frozen=True, slots=True)
class Grant:
    granted: int
    used: int


class RedisQuotaStore:
    def __init__(self, url: str, *, timeout: float = 0.25) -> None:
        self.url = url
        self._client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                            health_check_interval=0)
        self._sha = hashlib.sha1(_GRANT.encode()).hexdigest()

    def grant(self, requests: Sequence[LeaseRequest]) -> list[Grant]:
        """Every request in one round trip (two when Redis must first learn the script,
        after its start). Raises StoreUnavailable."""
        try:
            try:
                answers = self._send(requests)
            except redis.exceptions.NoScriptError:
                self._client.script_load(_GRANT)
                answers = self._send(requests)
        except (redis.RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc) or type(exc).__name__) from exc
        return [Grant(int(granted), int(used)) for granted, used in answers]

    def _send(self, requests: Sequence[LeaseRequest]) -> list:
        pipe = self._client.pipeline(transaction=False)
        for request in requests:
            pipe.evalsha(self._sha, 1, redis_key(request.key, request.window_start), request.limit, request.want,
                         (request.window_end + EXPIRY_MARGIN_SECONDS) * 1000)
        return pipe.execute()

    def ping(self) -> None:
        try:
            self._client.ping()
        except (redis.RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc) or type(exc).__name__) from exc

    def close(self) -> None:
        self._client.close()


def redis_key(counter_key: str, window_start: int) -> str:
    return f"{KEY_PREFIX}{counter_key}|{window_start}"
