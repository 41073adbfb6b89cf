"""The gateway's ``memory://`` rate-limit store (``ratelimits.MovingWindowMemory``) answers as limits' own does."""
import random
import threading
import types
from collections import Counter, defaultdict

import limits.storage.memory as limits_memory
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from helpdesk_gateway import ratelimits


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def time(self):
        return self.now


def test_memory_uri_gives_the_gateways_store():
    assert isinstance(storage_from_string("memory://"), ratelimits.MovingWindowMemory)


def test_a_moving_window_refuses_the_hit_past_the_limit_until_the_oldest_leaves(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(ratelimits, "time", clock)
    limiter = MovingWindowRateLimiter(ratelimits.MovingWindowMemory())
    three = parse("3/second")
    assert [limiter.hit(three, "k") for _ in range(4)] == [True, True, True, False]
    assert limiter.hit(three, "other")  # another key has its own window
    clock.now += 0.5
    assert not limiter.hit(three, "k")
    assert limiter.get_window_stats(three, "k").remaining == 0
    clock.now += 0.6  # the first three are out of the window
    assert limiter.hit(three, "k")
    assert limiter.get_window_stats(three, "k").remaining == 2


def test_it_answers_as_limits_own_store_on_a_random_sequence(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(ratelimits, "time", clock)
    monkeypatch.setattr(limits_memory, "time", types.SimpleNamespace(time=clock.time))
    ours = MovingWindowRateLimiter(ratelimits.MovingWindowMemory())
    theirs_storage = limits_memory.MemoryStorage.__new__(limits_memory.MemoryStorage)
    # limits' own store, without the expiry thread its constructor starts (which would read the real clock)
    theirs_storage.__dict__.update(storage=Counter(), expirations={}, events={}, locks=defaultdict(threading.RLock))
    theirs_storage._MemoryStorage__schedule_expiry = lambda: None
    theirs = MovingWindowRateLimiter(theirs_storage)
    items = [parse("5/second"), parse("20/minute")]
    generator = random.Random(7)
    answers = []
    for _ in range(3000):
        clock.now += generator.expovariate(8.0)
        item, key = generator.choice(items), generator.choice("abc")
        cost = generator.choice((1, 1, 1, 2))
        answers.append((ours.hit(item, key, cost=cost), theirs.hit(item, key, cost=cost)))
        assert ours.get_window_stats(item, key).remaining == theirs.get_window_stats(item, key).remaining
    assert all(a == b for a, b in answers)
    assert {a for a, _ in answers} == {True, False}  # the sequence meets the limits and passes them


def test_idle_keys_are_swept(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(ratelimits, "time", clock)
    store = ratelimits.MovingWindowMemory()
    limiter = MovingWindowRateLimiter(store)
    for key in range(100):
        limiter.hit(parse("5/second"), str(key))
    clock.now += 5
    limiter.hit(parse("5/second"), "fresh")
    assert len(store._hits) == 1
