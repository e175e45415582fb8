"""Limits on judge calls: calls in flight per process, requests and tokens per minute.

``call_slot()`` caps the judge calls one worker process has in flight at
``TRACESCORE_JUDGE_CONCURRENCY``; a call waits for a free slot within its
scorer run's time limit.

``TRACESCORE_JUDGE_RPM`` / ``TRACESCORE_JUDGE_TPM`` are token buckets shared by
every worker: in Redis (one Lua script checks and takes both buckets at once,
so two workers never spend the same share) when ``REDIS_URL`` is set, in the
process otherwise. A bucket holds a minute's worth and refills continuously,
so a burst of a full minute's requests passes and then calls are spaced at
the configured rate. A call takes one request and its estimated prompt
tokens before it is sent, and the tokens it really used beyond the estimate
once it is answered (the bucket may go below zero: later calls wait longer).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable

from django.conf import settings

log = logging.getLogger(__name__)

WINDOW = 60.0  # seconds: limits are per minute


class LimitTimeout(Exception):
    """The call would wait past its scorer run's time limit; ``wait`` says how long
    it would still have had to wait."""

    def __init__(self, message: str, wait: float):
        super().__init__(message)
        self.wait = wait


class LocalBucket:
    """Requests and tokens per minute for this process; ``clock`` for tests."""

    def __init__(self, rpm: int, tpm: int, clock: Callable[[], float] = time.monotonic):
        self.caps = (float(rpm), float(tpm))
        self.levels = list(self.caps)
        self.clock = clock
        self.stamp = clock()
        self.lock = threading.Lock()

    def take(self, requests: int = 1, tokens: int = 0, *, force: bool = False) -> float:
        """Take ``requests`` and ``tokens``: 0.0 when taken, else the seconds to wait
        before they could be (nothing taken). ``force`` takes them whatever is left."""
        with self.lock:
            now = self.clock()
            elapsed, self.stamp = max(0.0, now - self.stamp), now
            wait = 0.0
            needs = (requests, tokens)
            for i, cap in enumerate(self.caps):
                if cap <= 0:
                    continue
                self.levels[i] = min(cap, self.levels[i] + elapsed * cap / WINDOW)
                need = min(needs[i], cap)
                if not force and self.levels[i] < need:
                    wait = max(wait, (need - self.levels[i]) * WINDOW / cap)
            if wait:
                return wait
            for i, cap in enumerate(self.caps):
                if cap > 0:
                    self.levels[i] -= min(needs[i], cap)
            return 0.0


# KEYS[1]: the bucket's hash; ARGV: rpm, tpm, requests, tokens, force (0/1).
# Seconds to wait as a string (a Lua number would come back truncated to an integer).
TAKE_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local caps = {tonumber(ARGV[1]), tonumber(ARGV[2])}
local needs = {tonumber(ARGV[3]), tonumber(ARGV[4])}
local force = ARGV[5] == '1'
local state = redis.call('HMGET', KEYS[1], 'r', 't', 'ts')
local stamp = tonumber(state[3]) or now
local elapsed = math.max(0, now - stamp)
local levels = {0, 0}
local wait = 0
for i = 1, 2 do
  local cap = caps[i]
  if cap > 0 then
    local level = tonumber(state[i]) or cap
    level = math.min(cap, level + elapsed * cap / 60)
    levels[i] = level
    local need = math.min(needs[i], cap)
    if (not force) and level < need then
      wait = math.max(wait, (need - level) * 60 / cap)
    end
  end
end
if wait > 0 then
  return tostring(wait)
end
for i = 1, 2 do
  if caps[i] > 0 then
    levels[i] = levels[i] - math.min(needs[i], caps[i])
  end
end
redis.call('HSET', KEYS[1], 'r', tostring(levels[1]), 't', tostring(levels[2]), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], 300)
return '0'
"""


class RedisBucket:
    """The same bucket kept in Redis, shared by every process that uses ``key``."""

    def __init__(self, client, key: str, rpm: int, tpm: int):
        self.client = client
        self.key = key
        self.caps = (rpm, tpm)
        self.script = client.register_script(TAKE_SCRIPT)

    def take(self, requests: int = 1, tokens: int = 0, *, force: bool = False) -> float:
        answer = self.script(
            keys=[self.key], args=[*self.caps, requests, tokens, "1" if force else "0"]
        )
        return float(answer.decode() if isinstance(answer, bytes) else answer)


_buckets: dict[tuple, LocalBucket | RedisBucket] = {}
_buckets_lock = threading.Lock()


def judge_bucket(base_url: str) -> LocalBucket | RedisBucket | None:
    """The bucket of the judge endpoint ``base_url``; None when no limit is set."""
    rpm, tpm = settings.TRACESCORE_JUDGE_RPM, settings.TRACESCORE_JUDGE_TPM
    if not rpm and not tpm:
        return None
    redis_url = settings.REDIS_URL
    ident = (os.getpid(), redis_url, settings.Q_CLUSTER["name"], base_url, rpm, tpm)
    with _buckets_lock:
        bucket = _buckets.get(ident)
        if bucket is None:
            if redis_url:
                import redis

                key = f"tracescore:{settings.Q_CLUSTER['name']}:judge-limit:{base_url}"
                bucket = RedisBucket(redis.Redis.from_url(redis_url), key, rpm, tpm)
            else:
                bucket = LocalBucket(rpm, tpm)
            _buckets[ident] = bucket
    return bucket


def wait_for_share(
    bucket, tokens: int, time_left: Callable[[], float | None], margin: float = 0.05
) -> float:
    """Take one request and ``tokens`` from ``bucket``, waiting as long as needed.

    Returns the seconds waited. Raises LimitTimeout when the wait would outlast
    the time left (``time_left()``, None for no limit) less ``margin``.
    """
    waited = 0.0
    while True:
        try:
            wait = bucket.take(1, tokens)
        except Exception as error:  # Redis away: judge on, unlimited, rather than fail
            log.warning("The judge rate limit could not be checked: %s", error)
            return waited
        if not wait:
            return waited
        left = time_left()
        if left is not None and wait + margin >= left:
            raise LimitTimeout(
                f"the judge rate limit (TRACESCORE_JUDGE_RPM/TPM) leaves no room for "
                f"{wait:.3g} s, past the scorer's time limit",
                wait,
            )
        # Re-check at least every second: other workers' calls move the bucket too.
        pause = min(wait, 1.0)
        time.sleep(pause)
        waited += pause


def charge(bucket, tokens: int) -> None:
    """Take ``tokens`` more (a call used more than estimated), without waiting."""
    if bucket is None or tokens <= 0:
        return
    with contextlib.suppress(Exception):
        bucket.take(0, tokens, force=True)


# --- calls in flight ------------------------------------------------------------

_slots: tuple[int, int, threading.BoundedSemaphore] | None = None
_slots_lock = threading.Lock()


def _semaphore() -> threading.BoundedSemaphore:
    global _slots
    size = settings.TRACESCORE_JUDGE_CONCURRENCY
    with _slots_lock:
        if _slots is None or _slots[:2] != (os.getpid(), size):
            _slots = (os.getpid(), size, threading.BoundedSemaphore(size))
        return _slots[2]


@contextlib.contextmanager
def call_slot(time_left: Callable[[], float | None], margin: float = 0.05):
    """Hold one of this process's judge-call slots for the ``with`` block.

    Raises LimitTimeout when no slot frees up before the time left runs out.
    """
    semaphore = _semaphore()
    left = time_left()
    timeout = None if left is None else max(0.0, left - margin)
    if not semaphore.acquire(timeout=timeout):
        raise LimitTimeout(
            f"all {settings.TRACESCORE_JUDGE_CONCURRENCY} judge call slots of the worker "
            "stayed busy until the scorer's time limit",
            0.0,
        )
    try:
        yield
    finally:
        semaphore.release()
