"""Live-stream slots (``streams.py``) in both stores: the real Redis on 127.0.0.1:6379 and this process."""
import uuid

import pytest
import redis

from helpdesk_gateway.streams import StreamSlots, TooManyStreams

REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["redis", "memory"])
def make_slots(request):
    prefix = f"hdtest-{uuid.uuid4().hex[:8]}"
    storage = REDIS if request.param == "redis" else "memory://"

    def make(per_worker=10, per_chat=10, per_address=10, lease_seconds=60):
        return StreamSlots(storage, per_worker, per_chat, per_address, lease_seconds, prefix=prefix)

    yield make
    if request.param == "redis":
        client = redis.Redis.from_url(REDIS)
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)


def test_a_chat_takes_at_most_its_streams_and_a_released_slot_is_free_again(make_slots):
    slots = make_slots(per_chat=2)
    first = slots.take("192.0.2.1", chat="c1")
    slots.take("192.0.2.2", chat="c1")
    with pytest.raises(TooManyStreams, match="this chat"):
        slots.take("192.0.2.3", chat="c1")
    slots.take("192.0.2.3", chat="c2")  # another chat is not held up
    first()
    slots.take("192.0.2.3", chat="c1")


def test_an_address_takes_at_most_its_streams(make_slots):
    slots = make_slots(per_address=2)
    slots.take("192.0.2.1", chat="c1")
    slots.take("192.0.2.1")
    with pytest.raises(TooManyStreams, match="this address") as refused:
        slots.take("192.0.2.1", chat="c3")
    assert (refused.value.status, refused.value.code, refused.value.retry_after) == (429, "too_many_streams", 5)
    slots.take("192.0.2.9")


def test_a_worker_holds_at_most_its_share_of_threads_and_a_refusal_takes_nothing(make_slots):
    slots = make_slots(per_worker=2, per_address=1)
    slots.take("192.0.2.1")
    with pytest.raises(TooManyStreams, match="this address"):
        slots.take("192.0.2.1")  # refused by the address: must not keep the worker slot it took first
    release = slots.take("192.0.2.2")
    with pytest.raises(TooManyStreams, match="as many live streams"):
        slots.take("192.0.2.3")
    release()
    slots.take("192.0.2.3")


def test_a_lease_that_was_never_given_back_ends_by_itself(make_slots):
    slots = make_slots(per_chat=1, lease_seconds=0)  # a worker that died while streaming
    slots.take("192.0.2.1", chat="c1")
    slots.take("192.0.2.2", chat="c1")
