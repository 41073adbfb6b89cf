"""The portal's suggestions while typing, answered from memory when the same text was asked lately.

Why: every few keystrokes of every visitor asks the knowledge base for suggestions. Through the service that
is an RPC round trip over RabbitMQ, a search and a write (the suggestion's record and its
``suggestion_shown`` event, which deflection is counted against): about 4 ms of the gateway's CPU and 6 ms
of the kb_search service's per keystroke (``bench/portal.py``, bench/README.md), so 16 visitors typing
at once queue on two cores. What visitors type repeats (the same questions, the same first letters), and
portal suggestions do not depend on who asks (public articles only), so each gateway process keeps the
articles found for a text (normalised: case and spacing) and language, for ``HELPDESK_SUGGEST_CACHE_SECONDS``.

What stays exact:

- **Deflection**: a suggestion answered from memory still gets an id of its own (the visitor's "yes" is
  counted once per suggestion) and is recorded by the knowledge base as one it searched for
  (``record_suggestions_shown``: the same row and ``suggestion_shown`` event), in batches from a thread
  (``ShownRecorder``: every 0.2 s, one RPC for all; a failed batch is sent again, and the service skips ids
  it has). What is lost: the batch in memory when the gateway process dies (at most 0.2 s of suggestions
  shown: counted as never shown, and an article opened from one of them is shown without being counted,
  as the portal does for any unknown suggestion).
- **Articles changing**: each process follows the knowledge base's article events (``ArticleFeed``, one
  queue per process as the live streams have): one empties the cache, and for ``SETTLE_SECONDS`` after it
  nothing is kept (the search index takes the change from the same event a moment later; an answer read
  before that must not be kept). Not subscribed (starting, or the broker lost): no answer is kept or
  used, and on subscribing again the same settling time (an event just before it was missed); the
  lifetime bounds a stale answer anyway. "Nothing found" is never kept: a new article on its way into
  the index must be found as soon as it is there.
"""
import atexit
import logging
import threading
import time
import uuid
from collections import OrderedDict

from prometheus_client import Counter

from .fanout import EventFeed
from .rpc import ServiceUnavailable

log = logging.getLogger(__name__)

ANSWERS = Counter("helpdesk_gateway_suggestions_total", "Portal suggestions answered, by where from",
                  ["source"])  # source: cache | service (asked: not kept, expired, or not kept now)
SETTLE_SECONDS = 10.0  # after an article event, how long answers are not kept (the index catches up)
FLUSH_SECONDS = 0.2
MAX_PENDING = 10_000  # suggestions shown waiting to be recorded; beyond (the service away for long), dropped


def normalised(text):
    """The key of a text: what the search would not tell apart (case, runs of spaces)."""
    return " ".join(text.lower().split())


class ArticleFeed(EventFeed):
    source = "kb_search"
    event_types = ("article_published", "article_updated", "article_archived")
    unavailable = "The knowledge base's article events are not followed yet."

    def __init__(self, amqp_uri, on_change):
        super().__init__(amqp_uri)
        self.on_change = on_change

    def on_event(self, envelope):
        self.on_change()


class _Never:
    """The feed of a cache that is off (``HELPDESK_SUGGEST_CACHE_SECONDS=0``): never following, so never used."""

    ready = False

    def start(self, timeout=0):
        raise ServiceUnavailable("The suggestion cache is off.")


NEVER = _Never()


class SuggestionCache:
    """Articles found per (text, language, size), for ``ttl`` seconds, at most ``size`` entries (oldest
    used first out). ``feed`` says whether article changes are being followed; ``clock`` for tests."""

    def __init__(self, ttl, entries, feed=None, clock=time.monotonic):
        self.ttl, self.entries, self.clock = ttl, entries, clock
        self.feed = feed
        self._lock = threading.Lock()
        self._answers = OrderedDict()
        self._generation = 0
        self._settled_at = 0.0
        self._followed = False
        self.hits = self.misses = 0

    def following(self):
        """Whether article changes reach us now; starts following (without waiting) when not."""
        if self.feed is None:
            return True
        if self.feed.ready:
            if not self._followed:  # (re)subscribed: an event published just before was missed
                self._followed = True
                self.changed()
            return True
        self._followed = False
        try:
            self.feed.start(timeout=0)
        except ServiceUnavailable:
            pass
        self.forget()  # what was kept before the subscription (or while it was lost) may be stale
        return False

    def forget(self, settle=0.0):
        with self._lock:
            self._answers.clear()
            self._generation += 1
            self._settled_at = max(self._settled_at, self.clock() + settle)

    def changed(self):
        """An article changed: forget every answer, and keep none for a moment."""
        self.forget(SETTLE_SECONDS)

    def get(self, key):
        """(items or None, generation): None when not kept; the generation to pass to :meth:`put`."""
        if not self.following():
            return None, None
        now = self.clock()
        with self._lock:
            found = self._answers.get(key)
            if found is not None and found[0] > now:
                self._answers.move_to_end(key)
                self.hits += 1
                return found[1], self._generation
            self.misses += 1
            return None, self._generation

    def put(self, key, items, generation):
        """Keep ``items`` if no article changed since :meth:`get` gave ``generation`` and none lately."""
        now = self.clock()
        with self._lock:
            if generation != self._generation or now < self._settled_at:
                return False
            self._answers[key] = (now + self.ttl, items)
            self._answers.move_to_end(key)
            while len(self._answers) > self.entries:
                self._answers.popitem(last=False)
            return True


class ShownRecorder:
    """Sends the suggestions answered from memory to the knowledge base, a batch at a time, from a thread."""

    def __init__(self, send, interval=FLUSH_SECONDS):
        self.send, self.interval = send, interval
        self._pending, self._lock, self._wake = [], threading.Lock(), threading.Event()
        self._thread = None

    def add(self, report):
        with self._lock:
            if len(self._pending) >= MAX_PENDING:
                log.warning("%s suggestions shown wait to be recorded; dropping the oldest", len(self._pending))
                del self._pending[: len(self._pending) // 10]
            self._pending.append(report)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="suggestions-shown", daemon=True)
                self._thread.start()
                atexit.register(self.flush)

    def flush(self):
        with self._lock:
            batch, self._pending = self._pending[:1000], self._pending[1000:]
        if not batch:
            return 0
        try:
            self.send(batch)
        except Exception:
            log.warning("recording %s suggestions shown failed; sent again shortly", len(batch), exc_info=True)
            with self._lock:
                self._pending[:0] = batch
            return 0
        return len(batch)

    def _run(self):
        while True:
            time.sleep(self.interval)
            while self.flush() == 1000:
                pass


class Suggestions:
    """``suggest`` (the knowledge base's RPC) with the cache in front; one per gateway process."""

    def __init__(self, call, cache, recorder):
        self.call, self.cache, self.recorder = call, cache, recorder

    def suggest(self, text, lang, size, viewer):
        key = (normalised(text), lang, size)
        items, generation = self.cache.get(key)
        if items is None:
            ANSWERS.labels("service").inc()
            answer = self.call("kb_search", "suggest", text, lang, viewer, size)
            if generation is not None and answer["items"]:  # nothing found is not kept: an article may be on
                self.cache.put(key, answer["items"], generation)  # its way into the index
            return answer
        ANSWERS.labels("cache").inc()
        suggestion_id = str(uuid.uuid4())
        self.recorder.add({"suggestion_id": suggestion_id, "lang": lang, "query_length": len(text),
                           "items": [{"id": item["id"], "score": item.get("score") or 0.0} for item in items]})
        return {"suggestion_id": suggestion_id, "items": [dict(item) for item in items]}
