"""Limits on open live streams (the chat stream, the workspace's live list).

Each open server-sent-event stream holds one gateway thread for up to its lifetime (five minutes), so
without a limit a few dozen anonymous streams would take every thread and the API with them. A stream
takes a slot in each of:

- **this worker** (``HELPDESK_STREAMS_PER_WORKER``, by default all of ``HELPDESK_GATEWAY_THREADS`` but 16,
  ``settings.streams_for_threads``): the threads it may hold, so the rest always serve ordinary requests;
  counted in the process, since the threads are the process's;
- **its chat** (``HELPDESK_STREAMS_PER_CHAT``, 4: the customer, the agent, a second tab each) and **its
  address** (``HELPDESK_STREAMS_PER_ADDRESS``, 10): counted across workers and replicas in Redis when
  ``HELPDESK_RATE_LIMIT_STORAGE`` is ``redis://...`` (per process with ``memory://``).

A full slot answers 429 ``too_many_streams`` with ``Retry-After``, before the stream starts. A slot is a
lease in a sorted set (member = the stream, score = when the lease ends, its lifetime plus a minute), taken
for all keys at once by one Lua script and given back when the answer closes; a worker that dies without
giving it back loses it only until the lease ends.
"""
import math
import threading
import time
import uuid

from helpdesk_common.errors import HelpdeskError

RETRY_SECONDS = 5

_TAKE = """
local now, expires, member = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= tonumber(ARGV[3 + i]) then return i end
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, expires, member)
  redis.call('EXPIRE', key, math.ceil(expires - now) + 1)
end
return 0
"""


class TooManyStreams(HelpdeskError):
    status = 429
    default_code = "too_many_streams"
    retry_after = RETRY_SECONDS


class _Local:
    """Leases in this process (``memory://``)."""

    def __init__(self):
        self._leases = {}
        self._lock = threading.Lock()

    def take(self, keys, limits, member, now, expires):
        with self._lock:
            for index, key in enumerate(keys):
                leases = self._leases.setdefault(key, {})
                for other in [m for m, end in leases.items() if end <= now]:
                    del leases[other]
                if len(leases) >= limits[index]:
                    return index + 1
            for key in keys:
                self._leases[key][member] = expires
            return 0

    def give_back(self, keys, member):
        with self._lock:
            for key in keys:
                leases = self._leases.get(key, {})
                leases.pop(member, None)
                if not leases:
                    self._leases.pop(key, None)


class _Redis:
    def __init__(self, url):
        import redis  # only when configured

        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.script = self.client.register_script(_TAKE)

    def take(self, keys, limits, member, now, expires):
        return int(self.script(keys=keys, args=[now, expires, member, *limits]))

    def give_back(self, keys, member):
        pipeline = self.client.pipeline()
        for key in keys:
            pipeline.zrem(key, member)
        pipeline.execute()


class StreamSlots:
    def __init__(self, storage_uri, per_worker, per_chat, per_address, lease_seconds, prefix="helpdesk"):
        self.prefix = prefix
        self.shared = _Redis(storage_uri) if storage_uri.startswith(("redis://", "rediss://")) else _Local()
        self.local = _Local()
        self.per_worker, self.per_chat, self.per_address = per_worker, per_chat, per_address
        self.lease_seconds = lease_seconds

    def take(self, address, chat=None):
        """A release function for a new stream, or TooManyStreams."""
        member, now = uuid.uuid4().hex, time.time()
        expires = now + self.lease_seconds
        if self.local.take(["worker"], [self.per_worker], member, now, expires):
            raise TooManyStreams("This server holds as many live streams as it may; retry in a few seconds.")
        keys, limits = [f"{self.prefix}:streams:address:{address}"], [self.per_address]
        if chat is not None:
            keys.append(f"{self.prefix}:streams:chat:{chat}")
            limits.append(self.per_chat)
        try:
            refused = self.shared.take(keys, limits, member, now, expires)
        except Exception:  # the store is unreachable: the per-worker limit still protects the threads
            refused, keys = 0, []
        if refused:
            self.local.give_back(["worker"], member)
            what = "this address" if refused == 1 else "this chat"
            raise TooManyStreams(f"Too many live streams are open for {what}; close one, or retry in a few seconds.")

        def release():
            self.local.give_back(["worker"], member)
            try:
                self.shared.give_back(keys, member)
            except Exception:  # the lease ends by itself
                pass

        return release


def open_stream(app, response, address, chat=None):
    """Take a slot for the stream ``response`` (429 when full) and give it back when the answer closes."""
    slots = app.extensions.get("helpdesk.stream_slots")
    if slots is None:
        settings = app.config["HELPDESK_SETTINGS"]
        slots = app.extensions.setdefault("helpdesk.stream_slots", StreamSlots(
            settings.rate_limit_storage, settings.streams_per_worker, settings.streams_per_chat,
            settings.streams_per_address, lease_seconds=math.ceil(settings.stream_lease_seconds),
            prefix=settings.rate_limit_prefix))
    response.call_on_close(slots.take(address, chat))
    return response
