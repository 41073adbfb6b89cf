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
queues cannot be and which die with their connection anyway: the gateway's RPC reply queues (nameko's
standalone proxy; a call whose reply is lost times out, the gateway answers 503 and the client retries with
its ``Idempotency-Key``), the gateway's live-update and chat stream queues (re-declared by their fan-out
thread on reconnection) and test taps.

A queue declared classic cannot be re-declared quorum (``PRECONDITION_FAILED - inequivalent arg
'x-queue-type'``): deploy/README.md says how an existing installation moves its queues.
"""
from kombu import Queue
from nameko.rpc import ReplyListener, Rpc, RpcConsumer
from nameko.rpc import RpcProxy as NamekoRpcProxy

QUORUM = {"x-queue-type": "quorum"}


def quorum(queue, **arguments):
    """``queue`` as a quorum queue (a new ``Queue``; ``arguments`` are added to its ``x-`` arguments).

    Exclusive and auto-delete queues are returned as they are: quorum queues cannot be either.
    """
    if queue.exclusive or queue.auto_delete:
        return queue
    queue_arguments = {**(queue.queue_arguments or {}), **QUORUM, **arguments}
    return Queue(queue.name, exchange=queue.exchange, routing_key=queue.routing_key, durable=True,
                 auto_delete=False, exclusive=False, queue_arguments=queue_arguments,
                 bindings=queue.bindings or None, no_ack=queue.no_ack)


class QuorumRpcConsumer(RpcConsumer):
    """nameko's RPC consumer whose ``rpc-<service>`` queue is a quorum queue."""

    def setup(self):
        super().setup()  # builds self.queue; the queue consumer reads it only when it starts consuming
        self.queue = quorum(self.queue)


class QuorumRpc(Rpc):
    rpc_consumer = QuorumRpcConsumer()


rpc = QuorumRpc.decorator
"""``@rpc``: nameko's, with its service queue a quorum queue."""


class QuorumReplyListener(ReplyListener):
    """The reply queue of a service's ``RpcProxy`` (``rpc.reply-<service>-<uuid>``) as a quorum queue.

    nameko declares it durable, not exclusive, with an expiry; as a classic queue it would be stranded on a
    stopped node, and the service could not re-declare it elsewhere (nor answer any RPC it makes).
    """

    def setup(self):
        super().setup()
        self.queue = quorum(self.queue)


class RpcProxy(NamekoRpcProxy):
    """``RpcProxy("tickets")``: nameko's, with a quorum reply queue."""

    rpc_reply_listener = QuorumReplyListener()
