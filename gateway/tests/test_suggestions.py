"""The portal's suggestion cache (``helpdesk_gateway.suggestions``) as plain objects: a fake clock, a fake
feed (it stands in for the kb_search article events the real one follows on RabbitMQ: tests/test_knowledge_base.py
drives the real one) and the RPC as a recording function."""
from helpdesk_gateway import suggestions
from helpdesk_gateway.rpc import ServiceUnavailable


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Feed:
    def __init__(self, ready=True):
        self.ready, self.started = ready, 0

    def start(self, timeout=0):
        self.started += 1
        raise ServiceUnavailable("not yet")


ITEMS = [{"id": 7, "title": "Reset your password", "score": 3.5, "snippet": "…"}]


def desk(ready=True, ttl=60):
    clock, feed, calls, sent = Clock(), Feed(ready), [], []

    def call(service, method, *args):
        calls.append((service, method, args))
        return {"suggestion_id": f"kb-{len(calls)}", "items": [dict(i) for i in ITEMS] if "pass" in args[0] else []}

    cache = suggestions.SuggestionCache(ttl, 3, feed=feed, clock=clock)
    cache._followed = ready  # subscribed before the test begins (the settling time on subscribing: its own test)
    recorder = suggestions.ShownRecorder(sent.append)
    recorder._thread = object.__new__(type("Alive", (), {"is_alive": lambda self: True}))  # flushed by hand here
    return suggestions.Suggestions(call, cache, recorder), clock, feed, calls, sent


def test_the_same_text_again_is_answered_from_memory_with_a_suggestion_of_its_own():
    desk_, _clock, _feed, calls, sent = desk()
    first = desk_.suggest("Reset pass", "en", 5, {"role": "anonymous"})
    assert first["suggestion_id"] == "kb-1" and len(calls) == 1
    again = desk_.suggest("  reset   PASS", "en", 5, {"role": "anonymous"})  # case and spacing do not matter
    assert len(calls) == 1 and again["items"] == ITEMS
    assert again["suggestion_id"] not in ("kb-1", None)
    assert desk_.recorder.flush() == 1
    assert sent == [[{"suggestion_id": again["suggestion_id"], "lang": "en", "query_length": len("  reset   PASS"),
                      "items": [{"id": 7, "score": 3.5}]}]]  # recorded as the service records its own
    desk_.suggest("reset pass", "sv", 5, None)  # another language, another size: asked
    desk_.suggest("reset pass", "en", 3, None)
    assert len(calls) == 3


def test_nothing_found_is_not_kept_an_article_may_be_on_its_way():
    desk_, _clock, _feed, calls, _sent = desk()
    assert desk_.suggest("xyz", "en", 5, None) == {"suggestion_id": "kb-1", "items": []}
    assert desk_.suggest("xyz", "en", 5, None) == {"suggestion_id": "kb-2", "items": []}
    assert len(calls) == 2 and desk_.recorder.flush() == 0


def test_an_answer_lives_for_its_lifetime_and_the_oldest_used_goes_first():
    desk_, clock, _feed, calls, _sent = desk(ttl=60)
    desk_.suggest("pass a", "en", 5, None)
    clock.now += 61
    desk_.suggest("pass a", "en", 5, None)
    assert len(calls) == 2
    for text in ("pass b", "pass c", "pass d"):  # three entries at most: "pass a" goes
        desk_.suggest(text, "en", 5, None)
    desk_.suggest("pass a", "en", 5, None)
    assert len(calls) == 6


def test_an_article_change_empties_the_cache_and_nothing_is_kept_while_the_index_catches_up():
    desk_, clock, _feed, calls, _sent = desk()
    desk_.suggest("pass", "en", 5, None)
    desk_.cache.changed()  # what ArticleFeed calls on article_published/updated/archived
    desk_.suggest("pass", "en", 5, None)
    desk_.suggest("pass", "en", 5, None)  # read during the settling time: not kept
    assert len(calls) == 3
    clock.now += suggestions.SETTLE_SECONDS + 0.1
    desk_.suggest("pass", "en", 5, None)
    desk_.suggest("pass", "en", 5, None)
    assert len(calls) == 4


def test_an_answer_read_across_a_change_is_not_kept():
    desk_, clock, _feed, calls, _sent = desk()
    key = ("pass", "en", 5)
    items, generation = desk_.cache.get(key)
    clock.now += suggestions.SETTLE_SECONDS + 1  # the change comes while the answer is on its way
    desk_.cache.changed()
    clock.now += suggestions.SETTLE_SECONDS + 1
    assert desk_.cache.put(key, ITEMS, generation) is False
    assert desk_.cache.get(key)[0] is None


def test_without_the_article_events_nothing_is_kept_or_used():
    desk_, clock, feed, calls, _sent = desk(ready=False)
    for _ in range(3):
        desk_.suggest("pass", "en", 5, None)
    assert len(calls) == 3 and feed.started == 3  # it keeps trying to follow them
    feed.ready = True  # subscribed: an event just before was missed, so a settling time first
    desk_.suggest("pass", "en", 5, None)
    clock.now += suggestions.SETTLE_SECONDS + 0.1
    desk_.suggest("pass", "en", 5, None)
    desk_.suggest("pass", "en", 5, None)
    assert len(calls) == 5


def test_a_failed_batch_is_sent_again():
    sent, failing = [], [True]

    def send(batch):
        if failing[0]:
            raise ServiceUnavailable("kb_search is away")
        sent.append(batch)

    recorder = suggestions.ShownRecorder(send)
    recorder._pending = [{"suggestion_id": "a"}, {"suggestion_id": "b"}]
    assert recorder.flush() == 0 and sent == []
    failing[0] = False
    assert recorder.flush() == 2 and sent == [[{"suggestion_id": "a"}, {"suggestion_id": "b"}]]
