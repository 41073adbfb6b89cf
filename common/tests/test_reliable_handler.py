"""Interface tests of ``reliable_handler`` and the parking tools, on a real RabbitMQ (throwaway vhost).

Events are published as the outbox publishes them: the JSON envelope on ``<source>.events`` with the
event type as routing key and the envelope id as message id. Backoffs are 50 ms; every wait polls
against a deadline.
"""
import io
import json
import time
import tomllib
import uuid
from datetime import datetime, timezone
from importlib import import_module
from pathlib import Path

import eventlet
import pytest
from amqp.exceptions import NotFound
from kombu import Connection, Queue
from nameko.amqp.publish import Publisher
from nameko.extensions import DependencyProvider
from nameko.standalone.events import get_event_exchange
from prometheus_client import REGISTRY
from sqlalchemy import Integer, String, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from helpdesk_common.adapters import parking
from helpdesk_common.adapters.consumer import ReliableEventHandler, Republisher, reliable_handler
from helpdesk_common.inbox import ProcessedEventMixin, first_delivery
from helpdesk_common.adapters.database import Database, engine_for
from helpdesk_common.errors import ValidationFailed

FAST = (0.05,)  # seconds between attempts in these tests
DEADLINE = 10.0


# --- helpers ---------------------------------------------------------------------------------------

def wait_for(predicate, what, timeout=DEADLINE):
    """Poll ``predicate`` until it answers truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        eventlet.sleep(0.01)


def new_envelope(event_type="ticket_created", source="tickets"):
    return {
        "id": str(uuid.uuid4()), "type": event_type, "source": source,
        "time": datetime.now(timezone.utc).isoformat(), "specversion": "1.0", "schema_version": 1,
        "correlation_id": "req-1", "subject": "HD-000001", "datacontenttype": "application/json",
        "data": {"ticket": {"number": "HD-000001", "subject": "Printer on fire"}},
    }


def publish(amqp_uri, envelope, **properties):
    """What the outbox relay does with one row."""
    Publisher(amqp_uri, use_confirms=True).publish(
        envelope, exchange=get_event_exchange(envelope["source"], {}), routing_key=envelope["type"],
        message_id=envelope["id"], type=envelope["type"],
        headers={"correlation_id": envelope.get("correlation_id") or ""}, **properties,
    )


def depth(amqp_uri, queue_name):
    """Messages ready in a queue (unacknowledged ones are not counted)."""
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        try:
            return Queue(queue_name, channel=channel).queue_declare(passive=True).message_count
        finally:
            channel.close()


def queue_of(service, method, event_type="ticket_created", source="tickets"):
    return f"evt-{source}-{event_type}--{service}.{method}"


class ContextSpy(DependencyProvider):
    """Records, in ``seen``, the context data (from message headers) each worker started with."""

    def __init__(self, seen):
        self.seen = seen

    def worker_setup(self, worker_ctx):
        self.seen.append(dict(worker_ctx.data))


class Metric:
    """A prometheus sample's change since the start of the test."""

    def __init__(self, name, **labels):
        self.name, self.labels = name, labels
        self.start = self.now()

    def now(self):
        return REGISTRY.get_sample_value(self.name, self.labels) or 0.0

    @property
    def delta(self):
        return self.now() - self.start


def start(container_factory, service_cls, config):
    container = container_factory(service_cls, config)
    container.start()
    return container


# --- retries ---------------------------------------------------------------------------------------

def test_handler_failing_twice_runs_until_it_succeeds_and_the_event_is_acked(container_factory,
                                                                             rabbit_config):
    amqp_uri = rabbit_config["AMQP_URI"]
    calls = []

    contexts = []

    class Flaky:
        name = "flaky"
        spy = ContextSpy(contexts)

        # Both retries go through the same 50 ms retry queue: a second pass must not be taken for a
        # dead-letter cycle.
        @reliable_handler("tickets", "ticket_created", max_attempts=5, backoff=(0.05, 0.05))
        def on_ticket_created(self, event):
            calls.append((time.monotonic(), event))
            if len(calls) <= 2:
                raise RuntimeError(f"transient failure {len(calls)}")

    retries = Metric("helpdesk_consumer_retries_total", service="flaky", handler="on_ticket_created")
    parked = Metric("helpdesk_consumer_parked_total", service="flaky", handler="on_ticket_created",
                    reason="exhausted")
    container = start(container_factory, Flaky, rabbit_config)
    envelope = new_envelope()
    publish(amqp_uri, envelope)

    wait_for(lambda: len(calls) >= 3, "the third attempt")
    container.stop()  # waits for the worker; a message left unacknowledged would go back to its queue

    assert [event for _, event in calls] == [envelope] * 3  # the same body each time, and no 4th run
    gaps = [later - earlier for (earlier, _), (later, _) in zip(calls, calls[1:])]
    assert all(gap >= 0.045 for gap in gaps), f"retried before its backoff: {gaps}"
    queue = queue_of("flaky", "on_ticket_created")
    assert depth(amqp_uri, queue) == 0
    assert depth(amqp_uri, f"{queue}.retry-50ms") == 0
    assert parking.count_parked(amqp_uri) == 0
    assert retries.delta == 2
    assert parked.delta == 0
    # The retry bookkeeping stays out of the workers' context (nameko would pass it on downstream).
    assert len(contexts) == 3
    for context in contexts:
        assert context["correlation_id"] == "req-1"
        assert not [key for key in context if key.startswith(("x-helpdesk-", "x-death", "x-first-death"))]


def test_events_the_skip_rule_answers_true_for_are_acked_without_a_worker(container_factory, rabbit_config):
    amqp_uri = rabbit_config["AMQP_URI"]
    handled, workers = [], []

    def echo(event):
        if event["subject"] == "broken":
            raise KeyError("a rule that fails must not lose the event")
        return event["correlation_id"] == "echo"

    class Skipping:
        name = "skipping"
        spy = ContextSpy(workers)

        @reliable_handler("tickets", "ticket_created", backoff=FAST, skip=echo)
        def on_ticket_created(self, event):
            handled.append(event["id"])

    skipped = Metric("helpdesk_consumer_skipped_total", service="skipping", handler="on_ticket_created")
    container = start(container_factory, Skipping, rabbit_config)
    echoes = [{**new_envelope(), "correlation_id": "echo"} for _ in range(5)]
    kept = [new_envelope(), {**new_envelope(), "subject": "broken"}]
    for envelope in echoes + kept:
        publish(amqp_uri, envelope)

    wait_for(lambda: len(handled) == 2 and skipped.delta == 5, "two events handled and five skipped")
    container.stop()

    assert sorted(handled) == sorted(envelope["id"] for envelope in kept)
    assert len(workers) == 2  # no worker (dependencies, hooks) for a skipped event
    assert depth(amqp_uri, queue_of("skipping", "on_ticket_created")) == 0  # skipped ones are acked
    assert parking.count_parked(amqp_uri) == 0


def test_replicas_share_the_queue_and_each_event_takes_effect_once(container_factory, rabbit_config):
    amqp_uri = rabbit_config["AMQP_URI"]
    runs, done = {}, []

    class Replicated:
        name = "replicated"

        @reliable_handler("tickets", "ticket_created", max_attempts=3, backoff=FAST)
        def on_ticket_created(self, event):
            runs[event["id"]] = runs.get(event["id"], 0) + 1
            if runs[event["id"]] == 1:
                raise RuntimeError("first attempt fails")
            done.append(event["id"])

    replicas = [start(container_factory, Replicated, rabbit_config) for _ in range(2)]
    envelopes = [new_envelope() for _ in range(20)]
    for envelope in envelopes:
        publish(amqp_uri, envelope)

    wait_for(lambda: len(done) >= len(envelopes), "every event to succeed")
    for stopping in [eventlet.spawn(replica.stop) for replica in replicas]:
        stopping.wait()

    assert sorted(done) == sorted(envelope["id"] for envelope in envelopes)
    assert runs == {envelope["id"]: 2 for envelope in envelopes}
    assert depth(amqp_uri, queue_of("replicated", "on_ticket_created")) == 0
    assert parking.count_parked(amqp_uri) == 0


def test_a_failed_republish_leaves_the_event_in_its_queue(container_factory, rabbit_config, monkeypatch):
    amqp_uri = rabbit_config["AMQP_URI"]
    calls = []
    real_publish = Republisher.publish
    publishes = []

    def broker_trouble_once(self, queue, message, headers):
        publishes.append(queue.name)
        if len(publishes) == 1:
            raise ConnectionError("broker went away")
        return real_publish(self, queue, message, headers)

    monkeypatch.setattr(Republisher, "publish", broker_trouble_once)
    monkeypatch.setattr(ReliableEventHandler, "reroute_failure_delay", 0.01)

    class Unlucky:
        name = "unlucky"

        @reliable_handler("tickets", "ticket_created", max_attempts=5, backoff=FAST)
        def on_ticket_created(self, event):
            calls.append(event["id"])
            if len(calls) <= 2:
                raise RuntimeError("failing")

    failures = Metric("helpdesk_consumer_reroute_failures_total", service="unlucky",
                      handler="on_ticket_created")
    container = start(container_factory, Unlucky, rabbit_config)
    envelope = new_envelope()
    publish(amqp_uri, envelope)

    wait_for(lambda: len(calls) >= 3, "the event to be handled after the failed republish")
    container.stop()

    # 1st run fails, its republish fails: requeued as it was. 2nd run fails: retried. 3rd succeeds.
    assert calls == [envelope["id"]] * 3
    assert publishes == [f"{queue_of('unlucky', 'on_ticket_created')}.retry-50ms"] * 2
    assert failures.delta == 1
    assert depth(amqp_uri, queue_of("unlucky", "on_ticket_created")) == 0
    assert parking.count_parked(amqp_uri) == 0


# --- parking ---------------------------------------------------------------------------------------

def test_handler_that_always_fails_is_parked_with_its_error_and_listed(container_factory, rabbit_config):
    amqp_uri = rabbit_config["AMQP_URI"]
    calls = []

    class Sick:
        name = "sick"

        @reliable_handler("tickets", "ticket_created", max_attempts=3, backoff=FAST)
        def on_ticket_created(self, event):
            calls.append(event["id"])
            raise RuntimeError("database unavailable")

    retries = Metric("helpdesk_consumer_retries_total", service="sick", handler="on_ticket_created")
    parked_metric = Metric("helpdesk_consumer_parked_total", service="sick", handler="on_ticket_created",
                           reason="exhausted")
    container = start(container_factory, Sick, rabbit_config)
    envelope = new_envelope()
    sent_at = 1795000000  # seconds since the epoch, as AMQP carries it
    publish(amqp_uri, envelope, timestamp=sent_at, app_id="tickets")  # properties a publisher may set

    wait_for(lambda: parking.count_parked(amqp_uri) == 1, "the event to be parked")
    container.stop()

    assert calls == [envelope["id"]] * 3
    [parked] = parking.list_parked(amqp_uri)
    queue = queue_of("sick", "on_ticket_created")
    assert parked.message_id == envelope["id"]
    assert parked.body == envelope
    assert (parked.handler, parked.queue) == ("sick.on_ticket_created", queue)
    assert parked.event_type == "ticket_created"
    assert (parked.attempts, parked.reason, parked.replays) == (3, "exhausted", 0)
    assert parked.error == "RuntimeError: database unavailable"
    assert parked.error_type == "builtins.RuntimeError"
    assert "raise RuntimeError" in parked.traceback
    assert parked.parked_at
    assert parked.headers[parking.EXCHANGE] == "tickets.events"
    assert parked.headers["correlation_id"] == "req-1"  # the original headers travel with the event
    assert not any(key.startswith("x-death") for key in parked.headers)
    with Connection(amqp_uri) as connection:  # the message's own properties survived the republishes
        channel = connection.channel()
        message = Queue(parking.PARKED_QUEUE, channel=channel).get(no_ack=False)
        assert message.properties["timestamp"] == sent_at
        assert (message.properties["app_id"], message.properties["type"]) == ("tickets", "ticket_created")
        assert message.properties["delivery_mode"] == 2
        channel.close()  # returns it to the queue

    # Listing left it parked, and the handler's queues are empty.
    assert [p.message_id for p in parking.list_parked(amqp_uri)] == [envelope["id"]]
    assert parking.count_parked(amqp_uri) == 1
    assert parking.count_parked(amqp_uri, handler="sick.on_ticket_created") == 1
    assert parking.count_parked(amqp_uri, handler="other.handler") == 0
    assert depth(amqp_uri, queue) == 0
    assert depth(amqp_uri, f"{queue}.retry-50ms") == 0
    assert retries.delta == 2
    assert parked_metric.delta == 1


def test_expected_error_is_parked_at_once_without_retries(container_factory, rabbit_config):
    amqp_uri = rabbit_config["AMQP_URI"]
    calls = []

    class Strict:
        name = "strict"

        @reliable_handler("tickets", "ticket_created", max_attempts=5, backoff=FAST)
        def on_ticket_created(self, event):
            calls.append(event["id"])
            raise ValidationFailed("ticket has no requester")

    retries = Metric("helpdesk_consumer_retries_total", service="strict", handler="on_ticket_created")
    parked_metric = Metric("helpdesk_consumer_parked_total", service="strict", handler="on_ticket_created",
                           reason="non_retryable")
    container = start(container_factory, Strict, rabbit_config)
    envelope = new_envelope()
    publish(amqp_uri, envelope)

    wait_for(lambda: parking.count_parked(amqp_uri) == 1, "the event to be parked")
    container.stop()

    assert calls == [envelope["id"]]
    [parked] = parking.list_parked(amqp_uri)
    assert (parked.message_id, parked.attempts, parked.reason) == (envelope["id"], 1, "non_retryable")
    assert parked.error == "ValidationFailed: ticket has no requester"
    assert parked.error_type == "helpdesk_common.errors.ValidationFailed"
    assert retries.delta == 0
    assert parked_metric.delta == 1


def test_replay_sends_a_parked_event_back_to_its_own_handler_only(container_factory, rabbit_config):
    amqp_uri = rabbit_config["AMQP_URI"]
    state = {"broken": True}
    flaky_calls, other_calls = [], []

    class Pair:
        name = "pair"

        @reliable_handler("tickets", "ticket_created", max_attempts=2, backoff=FAST)
        def needs_fix(self, event):
            flaky_calls.append(event["id"])
            if state["broken"]:
                raise RuntimeError("bug in needs_fix")

        @reliable_handler("tickets", "ticket_created")
        def healthy(self, event):
            other_calls.append(event["id"])

    container = start(container_factory, Pair, rabbit_config)
    envelope, bystander = new_envelope(), new_envelope()
    publish(amqp_uri, envelope)
    wait_for(lambda: parking.count_parked(amqp_uri) == 1, "the event to be parked")
    assert flaky_calls == [envelope["id"]] * 2

    # Replayed while still broken: a full set of attempts again, then parked again.
    result = parking.replay(amqp_uri, envelope["id"])
    assert [p.message_id for p in result.replayed] == [envelope["id"]] and result.failed == []
    wait_for(lambda: len(flaky_calls) == 4 and parking.count_parked(amqp_uri) == 1, "the event parked again")
    [parked] = parking.list_parked(amqp_uri)
    assert (parked.attempts, parked.replays) == (2, 1)

    # Fixed: the replay is processed, and nothing is left parked.
    state["broken"] = False
    assert parking.replay(amqp_uri, "no-such-event").replayed == []
    result = parking.replay(amqp_uri, envelope["id"], handler="pair.needs_fix")
    assert [p.handler for p in result.replayed] == ["pair.needs_fix"]
    wait_for(lambda: len(flaky_calls) == 5, "the replayed event to be handled")
    publish(amqp_uri, bystander)  # processed by both handlers, after the replay: a marker
    wait_for(lambda: bystander["id"] in other_calls and bystander["id"] in flaky_calls, "the marker event")
    container.stop()

    assert parking.count_parked(amqp_uri) == 0
    assert other_calls == [envelope["id"], bystander["id"]]  # the replays never reached this handler
    assert depth(amqp_uri, queue_of("pair", "needs_fix")) == 0


def test_replay_keeps_the_event_parked_when_its_handler_queue_is_gone(container_factory, rabbit_config):
    amqp_uri = rabbit_config["AMQP_URI"]

    class Doomed:
        name = "doomed"

        @reliable_handler("tickets", "ticket_created", backoff=FAST)
        def on_ticket_created(self, event):
            raise ValidationFailed("never")

    container = start(container_factory, Doomed, rabbit_config)
    envelope = new_envelope()
    publish(amqp_uri, envelope)
    wait_for(lambda: parking.count_parked(amqp_uri) == 1, "the event to be parked")
    container.stop()
    with Connection(amqp_uri) as connection:  # the handler was removed, and its queue deleted
        channel = connection.channel()
        channel.queue_delete(queue_of("doomed", "on_ticket_created"))
        channel.close()

    result = parking.replay_all(amqp_uri)

    assert result.replayed == []
    [(parked, reason)] = result.failed
    assert parked.message_id == envelope["id"] and "no queue" in reason
    assert [p.message_id for p in parking.list_parked(amqp_uri)] == [envelope["id"]]


def test_cli_lists_counts_and_replays(container_factory, rabbit_config):
    amqp_uri = rabbit_config["AMQP_URI"]
    state = {"broken": True}
    calls = []

    class Cli:
        name = "cli"

        @reliable_handler("tickets", "ticket_created", backoff=FAST)
        def on_ticket_created(self, event):
            calls.append(event["id"])
            if state["broken"]:
                raise ValidationFailed("bad ticket")

    def run(*argv):
        out = io.StringIO()
        status = parking.main(["--amqp-uri", amqp_uri, *argv], out=out)
        return status, out.getvalue()

    container = start(container_factory, Cli, rabbit_config)
    assert run("list") == (0, "no parked events\n")
    envelopes = [new_envelope(), new_envelope()]
    for envelope in envelopes:
        publish(amqp_uri, envelope)
    wait_for(lambda: parking.count_parked(amqp_uri) == 2, "both events to be parked")

    status, table = run("list")
    assert status == 0
    assert table.splitlines()[0].split() == ["message_id", "handler", "event_type", "attempts", "reason",
                                             "parked_at", "error"]
    assert all(envelope["id"] in table for envelope in envelopes) and "cli.on_ticket_created" in table
    status, lines = run("list", "--json", "--handler", "cli.on_ticket_created", "--limit", "1")
    [item] = [json.loads(line) for line in lines.splitlines()]
    assert item["message_id"] == envelopes[0]["id"] and item["body"] == envelopes[0]
    assert item["error"] == "ValidationFailed: bad ticket"
    assert run("count") == (0, "2\n")

    state["broken"] = False
    assert run("replay", envelopes[0]["id"]) == (0, f"replayed {envelopes[0]['id']} to "
                                                    f"{queue_of('cli', 'on_ticket_created')}\n")
    assert run("replay", "no-such-event") == (1, "not parked: no-such-event\n")
    status, output = run("replay", "--all")
    assert status == 0 and envelopes[1]["id"] in output
    wait_for(lambda: len(calls) == 4, "both replays to be handled")
    assert run("count") == (0, "0\n")
    container.stop()
    assert sorted(calls) == sorted([envelope["id"] for envelope in envelopes] * 2)

    with pytest.raises(SystemExit):  # replay needs ids or --all
        run("replay")


def test_inspecting_a_vhost_where_nothing_was_parked_creates_nothing(rabbit_config):
    amqp_uri = rabbit_config["AMQP_URI"]

    assert parking.count_parked(amqp_uri) == 0
    assert parking.list_parked(amqp_uri) == []
    assert parking.replay_all(amqp_uri).replayed == []
    with pytest.raises(NotFound):
        depth(amqp_uri, parking.PARKED_QUEUE)


def test_cli_is_registered_as_a_console_script():
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    module, _, function = pyproject["project"]["scripts"]["helpdesk-parked"].partition(":")
    assert getattr(import_module(module), function) is parking.main


# --- idempotency -----------------------------------------------------------------------------------

class Base(DeclarativeBase):
    pass


class ProcessedEvent(ProcessedEventMixin, Base):
    pass


class Effect(Base):
    __tablename__ = "effects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36))


def test_event_delivered_twice_takes_effect_once(container_factory, rabbit_config, tmp_path):
    amqp_uri = rabbit_config["AMQP_URI"]
    url = f"sqlite:///{tmp_path / 'consumer.db'}"
    Base.metadata.create_all(engine_for(url))
    calls = []

    class Idempotent:
        name = "idempotent"
        db = Database("TEST_DB_URL")

        @reliable_handler("tickets", "ticket_created", backoff=FAST)
        def on_ticket_created(self, event):
            first_run = not calls
            calls.append(event["id"])
            with self.db.begin() as session:
                if not first_delivery(session, ProcessedEvent, event["id"], "idempotent.on_ticket_created"):
                    return
                session.add(Effect(event_id=event["id"]))
                session.flush()
                if first_run:  # fails after writing: the transaction, and its record, roll back
                    raise RuntimeError("crashed half-way")

    container = start(container_factory, Idempotent, dict(rabbit_config, TEST_DB_URL=url))
    envelope = new_envelope()
    publish(amqp_uri, envelope)
    publish(amqp_uri, envelope)  # the outbox resent it (a crash between confirm and marking it sent)

    wait_for(lambda: len(calls) >= 3, "the failed attempt, its retry and the duplicate")
    container.stop()

    assert calls == [envelope["id"]] * 3
    with sessionmaker(engine_for(url))() as session:
        assert session.scalars(select(Effect.event_id)).all() == [envelope["id"]]
        assert session.scalar(select(func.count()).select_from(ProcessedEvent)) == 1
    assert parking.count_parked(amqp_uri) == 0
