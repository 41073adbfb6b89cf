"""Every queue the platform declares is a quorum queue, so it outlives the loss of a broker node.

One place for it: :func:`quorum` turns a kombu ``Queue`` into its quorum form, and the nameko entrypoints
the services use come from here (``rpc``, ``RpcProxy``) or from :mod:`.consumer` (the event handlers,
their retry queues and ``helpdesk.parked``), all of them declaring through :func:`quorum`.

Why quorum: a classic queue lives on one node. When that node stops, its messages are unreachable, and a
service that reconnects to another node cannot even re-declare the queue (``NOT_FOUND - home node ... is
down``) until the node is back. A quorum queue is replicated (Raft) on a majority of nodes: with three nodes
one can stop, a new leader is elected in seconds, and consumers and publishers carry on through another node.
On a single node (``make run``) a quorum queue behaves like a durable classic one.

What stays classic: queues that belong to one connection (``exclusive``, or ``auto_delete``), which quorum
queues cannot be and which die with their connection anyway: the gateway's RPC reply queues
(:class:`ConnectionReplyListener`; a call whose reply is lost with its node times out, the gateway answers
503 and the client retries with its ``Idempotency-Key``), the gateway's live-update and chat stream queues
(re-declared by their fan-out thread on reconnection) and test taps. A quorum queue per gateway proxy
would cost a Raft group on three nodes for each of a few hundred short-lived readers.

A queue declared classic cannot be re-declared quorum (``PRECONDITION_FAILED - inequivalent arg
'x-queue-type'``): deploy/README.md says how an existing installation moves its queues.

``HELPDESK_QUEUE_TYPE=classic`` declares them classic instead: for a single broker node, where a quorum
queue buys nothing and costs a Raft group each. The test suite runs so (it creates and deletes a vhost of
about a hundred queues per stack, and a single node deleting thousands of Raft groups stalled its vhost
operations for minutes); the three-node cluster test and ``tests/test_queues.py`` use quorum queues.
"""
import logging
import os
import uuid

from amqp.exceptions import ConnectionError as AmqpConnectionError
from kombu import Queue
from kombu.exceptions import OperationalError as KombuOperationalError
from nameko.messaging import QueueConsumer
from nameko.rpc import RPC_REPLY_QUEUE_TEMPLATE, ReplyListener, Rpc, RpcConsumer, get_rpc_exchange
from nameko.rpc import RpcProxy as NamekoRpcProxy
from nameko.standalone.rpc import SingleThreadedReplyListener

log = logging.getLogger(__name__)

DELIVERY_LIMIT = 1_000_000_000
"""Returns a message survives, in effect without limit. A quorum queue counts every return of a message
(a requeue, a consumer's connection lost while it held it, a parked-events listing) as a delivery, and from
RabbitMQ 4.0 drops it after 20 unless told otherwise: an event waiting for a database to come back, or a
parked one listed often, would be lost. Set on every quorum queue from its first declaration, since a
queue's arguments cannot change later."""

QUORUM = {"x-queue-type": "quorum", "x-delivery-limit": DELIVERY_LIMIT}


def quorum(queue, **arguments):
    """``queue`` as a quorum queue (a new ``Queue``; ``arguments`` are added to its ``x-`` arguments).

    Exclusive and auto-delete queues are returned as they are: quorum queues cannot be either; so is every
    queue when ``HELPDESK_QUEUE_TYPE`` is ``classic``.
    """
    if queue.exclusive or queue.auto_delete or os.environ.get("HELPDESK_QUEUE_TYPE", "quorum") == "classic":
        return queue
    queue_arguments = {**(queue.queue_arguments or {}), **QUORUM, **arguments}
    return Queue(queue.name, exchange=queue.exchange, routing_key=queue.routing_key, durable=True,
                 auto_delete=False, exclusive=False, queue_arguments=queue_arguments,
                 bindings=queue.bindings or None, no_ack=queue.no_ack)


class NodeLossQueueConsumer(QueueConsumer):
    """nameko's queue consumer, which also survives acknowledging on a connection its node reset.

    nameko ignores an ack that fails with py-amqp's ``ConnectionError`` only; when a broker node dies the
    socket raises ``ConnectionResetError`` / ``OSError`` instead, which escaped into the worker and killed
    the whole service container. The message was not acknowledged, so the broker delivers it again (on
    the node the consumer reconnects to) and the idempotent handler skips it: dropping the ack is right.
    Every entrypoint here (``rpc``, ``RpcProxy`` replies, the reliable handlers) shares this one consumer.
    """

    def ack_message(self, message):
        try:
            super().ack_message(message)
        except (AmqpConnectionError, OSError):
            pass  # the connection is gone: the broker has taken the message back already

    def requeue_message(self, message):
        try:
            super().requeue_message(message)
        except (AmqpConnectionError, OSError):
            pass


class QuorumRpcConsumer(RpcConsumer):
    """nameko's RPC consumer whose ``rpc-<service>`` queue is a quorum queue."""

    queue_consumer = NodeLossQueueConsumer()

    def setup(self):
        super().setup()  # builds self.queue; the queue consumer reads it only when it starts consuming
        self.queue = quorum(self.queue)

    def handle_result(self, message, result, exc_info):
        """nameko's, except that a reply the broker cannot take does not kill the service.

        nameko publishes the reply with three retries (about 12 s) and lets the error escape into the worker,
        which kills the whole container: every service that was answering a call when its broker restarted
        (the soak restarts it: tests/soak.py) died with ``ECONNREFUSED``. The work is done and committed; only
        its answer is lost, as when it is lost in transit: the caller's reply queue died with its connection
        anyway, the caller times out (the gateway answers 503) and repeats the request, which the services
        answer idempotently (``Idempotency-Key``, version checks). So the request is acknowledged (or, its
        connection gone, already back with the broker) and the service carries on.
        """
        try:
            return super().handle_result(message, result, exc_info)
        except (KombuOperationalError, AmqpConnectionError, OSError) as error:
            log.warning("the reply to %s could not be sent (%s); the caller will time out and may repeat it",
                        message.delivery_info.get("routing_key"), error)
            self.queue_consumer.ack_message(message)  # NodeLossQueueConsumer: a dead connection is ignored
            return result, exc_info


class QuorumRpc(Rpc):
    rpc_consumer = QuorumRpcConsumer()


rpc = QuorumRpc.decorator
"""``@rpc``: nameko's, with its service queue a quorum queue."""


class QuorumReplyListener(ReplyListener):
    """The reply queue of a service's ``RpcProxy`` (``rpc.reply-<service>-<uuid>``) as a quorum queue.

    nameko declares it durable, not exclusive, with an expiry; as a classic queue it would be stranded on a
    stopped node, and the service could not re-declare it elsewhere (nor answer any RPC it makes).
    """

    queue_consumer = NodeLossQueueConsumer()

    def setup(self):
        super().setup()
        self.queue = quorum(self.queue)


class RpcProxy(NamekoRpcProxy):
    """``RpcProxy("tickets")``: nameko's, with a quorum reply queue."""

    rpc_reply_listener = QuorumReplyListener()


class ConnectionReplyListener(SingleThreadedReplyListener):
    """The reply queue of a standalone ``ClusterRpcProxy`` (the gateway's), exclusive to its connection.

    nameko declares it as a service's: durable, with an expiry. That outlives the proxy's connection for
    nothing (a standalone proxy is the only reader of its replies) and, classic, it is stranded on a dead
    node: the proxy's reconnection then fails on re-declaring it (``NOT_FOUND - home node ... is down``).
    Exclusive, it dies with its connection, and a proxy that lost its node declares it anew on another.
    Pass it as ``ClusterRpcProxy(config, reply_listener_cls=ConnectionReplyListener)``.
    """

    def setup(self):
        reply_queue_uuid = uuid.uuid4()
        self.routing_key = str(reply_queue_uuid)
        self.queue = Queue(RPC_REPLY_QUEUE_TEMPLATE.format(self.container.service_name, reply_queue_uuid),
                           exchange=get_rpc_exchange(self.container.config), routing_key=self.routing_key,
                           exclusive=True, auto_delete=True)
        self.queue_consumer.register_provider(self)  # declares the queue and starts consuming
