"""Every queue a service declares is a quorum queue (a real RabbitMQ node of this module's own, a vhost per
test; ``rabbitmqctl list_queues`` reads each queue's type)."""
import json
import os
import sys
import uuid

import pytest
from kombu import Queue

from helpdesk_common.adapters.consumer import reliable_batch_handler, reliable_handler
from helpdesk_common.adapters.parking import PARKED_QUEUE
from helpdesk_common.adapters.queues import RpcProxy, quorum, rpc
from helpdesk_common.testing import wait_for

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests"))  # the suite's broker harness
from rabbit_cluster import RabbitCluster  # noqa: E402


@pytest.fixture(scope="module")
def own_node(tmp_path_factory):
    """Quorum queues never on the machine's shared node: there, a vhost deleted while its quorum queues were
    still electing their leaders (a loaded machine) broke the node's quorum system (RabbitMQ 3.10) for every
    later run, a 541 INTERNAL_ERROR on each quorum declare, until the node was reset."""
    with RabbitCluster(tmp_path_factory.mktemp("quorum-broker"), size=1, prefix="hdq") as cluster:
        yield cluster.nodes[0]


@pytest.fixture
def rabbit_config(own_node):
    """nameko's fixture of the same name, on ``own_node``: a fresh vhost per test."""
    vhost = f"quorum-{uuid.uuid4().hex[:10]}"
    own_node.ctl("add_vhost", vhost)
    own_node.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    return {"AMQP_URI": f"pyamqp://guest:guest@127.0.0.1:{own_node.port}/{vhost}", "vhost": vhost,
            "username": "guest"}


@pytest.fixture(autouse=True)
def quorum_queues(monkeypatch):
    """The platform's default, which the rest of the suite turns off (``HELPDESK_QUEUE_TYPE=classic``, conftest)."""
    monkeypatch.setenv("HELPDESK_QUEUE_TYPE", "quorum")


class Listener:
    name = "listener"
    tickets = RpcProxy("tickets")

    @rpc
    def ping(self):
        return "pong"

    @reliable_handler("tickets", "ticket_updated", backoff=(0.05, 1))
    def on_updated(self, event):
        pass

    @reliable_batch_handler("tickets", "ticket_created")
    def on_created(self, events):
        pass


def queues_of(node, vhost, timeout=30.0):
    """{name: type} of the vhost's queues, once the listener's reply queue is among them."""
    def found():
        listed = json.loads(node.ctl("list_queues", "-p", vhost, "name", "type", "--formatter", "json") or "[]")
        queues = {queue["name"]: queue.get("type") for queue in listed}
        return queues if any(name.startswith("rpc.reply-listener-") for name in queues) else None
    return wait_for(found, timeout=timeout, message="the listener's reply queue", interval=0.5)


def test_a_service_declares_every_queue_quorum(container_factory, rabbit_config, own_node):
    container = container_factory(Listener, rabbit_config)
    container.start()
    found = queues_of(own_node, rabbit_config["vhost"])
    expected = {"rpc-listener", "evt-tickets-ticket_updated--listener.on_updated",
                "evt-tickets-ticket_updated--listener.on_updated.retry-50ms",
                "evt-tickets-ticket_created--listener.on_created", PARKED_QUEUE}
    assert expected <= set(found), found
    assert any(name.startswith("rpc.reply-listener-") for name in found), found
    assert {name: kind for name, kind in found.items() if kind != "quorum"} == {}


def test_a_classic_queue_left_from_before_stops_the_service_with_the_way_out(container_factory, rabbit_config):
    from amqp.exceptions import PreconditionFailed
    from kombu import Connection

    with Connection(rabbit_config["AMQP_URI"]) as connection:  # as an installation before quorum queues had it
        Queue(PARKED_QUEUE, durable=True)(connection.channel()).declare()
    container = container_factory(Listener, rabbit_config)
    with pytest.raises(PreconditionFailed, match="deploy/README.md"):
        container.start()


def test_quorum_keeps_arguments_and_leaves_connection_bound_queues_alone():
    queue = quorum(Queue("q", queue_arguments={"x-message-ttl": 5}), **{"x-delivery-limit": 3})
    assert queue.queue_arguments == {"x-message-ttl": 5, "x-queue-type": "quorum", "x-delivery-limit": 3}
    assert quorum(Queue("r")).queue_arguments["x-delivery-limit"] >= 1_000_000
    assert queue.durable and not queue.auto_delete
    exclusive = Queue("reply", exclusive=True, auto_delete=True)
    assert quorum(exclusive) is exclusive


class ResetChannel:
    connection = object()  # nameko acks only while the channel has a connection: it has one, half-dead


class ResetMessage:
    """A delivery whose connection the broker node reset: acking it raises as py-amqp does then."""

    channel = ResetChannel()

    def ack(self):
        raise ConnectionResetError(104, "Connection reset by peer")

    requeue = ack


def test_an_ack_on_a_connection_its_node_reset_is_dropped_not_raised_into_the_service():
    from nameko.messaging import QueueConsumer

    from helpdesk_common.adapters.queues import NodeLossQueueConsumer

    consumer = NodeLossQueueConsumer()
    consumer.ack_message(ResetMessage())  # the broker redelivers it; the handler is idempotent
    consumer.requeue_message(ResetMessage())
    # nameko's own lets it escape (and the service container dies): why the platform's consumer exists
    with pytest.raises(ConnectionResetError):
        QueueConsumer().ack_message(ResetMessage())


def test_classic_when_the_setting_says_so(monkeypatch):
    monkeypatch.setenv("HELPDESK_QUEUE_TYPE", "classic")
    queue = Queue("q", queue_arguments={"x-message-ttl": 5})
    assert quorum(queue) is queue


def test_a_reply_the_broker_cannot_take_does_not_kill_the_service(container_factory, rabbit_config, monkeypatch):
    """The soak (tests/soak.py) restarted the broker while services answered calls: nameko's reply publish
    gave up after its retries and the error killed the whole container. Now the reply is dropped (the caller
    times out and repeats) and the service answers the next call."""
    from kombu.exceptions import OperationalError
    from nameko.exceptions import RpcTimeout
    from nameko.rpc import Responder
    from nameko.standalone.rpc import ServiceRpcProxy

    container = container_factory(Listener, rabbit_config)
    container.start()
    send_response = Responder.send_response
    refused = []

    def broker_gone(self, result, exc_info):
        refused.append(result)
        raise OperationalError("[Errno 111] ECONNREFUSED")

    monkeypatch.setattr(Responder, "send_response", broker_gone)
    with ServiceRpcProxy("listener", rabbit_config, timeout=2) as listener:
        with pytest.raises(RpcTimeout):
            listener.ping()
        assert refused == ["pong"]
        monkeypatch.setattr(Responder, "send_response", send_response)
        assert not container._died.ready()  # before, the container had died with the ECONNREFUSED
        assert listener.ping() == "pong"
