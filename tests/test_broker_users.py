"""Per-service broker users on the real RabbitMQ: each service may publish its own events and RPC, never
another service's events; and the whole platform runs with every process on its own user."""
import secrets
import urllib.parse
import uuid

import pytest
import requests
from amqp.exceptions import AccessRefused
from kombu import Connection, Exchange, Producer

from helpdesk_common.adapters.broker_users import SERVICES, apply, permissions
from helpdesk_common.adapters.exchanges import event_exchanges
from stack import AMQP, Stack, new_ticket

pytestmark = pytest.mark.e2e


@pytest.fixture
def users(tmp_path_factory):
    """Every service's user on a stack's throwaway vhost (not started), deleted afterwards."""
    stack = Stack(tmp_path_factory.mktemp("stack-broker-users"))
    stack.vhost.create()
    prefix = f"hdtest-{uuid.uuid4().hex[:6]}"
    passwords = {service: secrets.token_urlsafe(12) for service in SERVICES}
    names = apply(f"{stack.vhost.api.removesuffix('/api')}".replace("://", f"://{stack.vhost.auth[0]}:{stack.vhost.auth[1]}@"),
                  stack.vhost.name, passwords, prefix=prefix)
    parts = urllib.parse.urlsplit(AMQP)

    def uri(service):
        return f"pyamqp://{names[service]}:{passwords[service]}@{parts.hostname}:{parts.port or 5672}/{stack.vhost.quoted}"

    try:
        yield stack, uri
    finally:
        stack.stop()
        for name in names.values():
            requests.delete(f"{stack.vhost.api}/users/{name}", auth=stack.vhost.auth, timeout=10)


def publish(uri, exchange, routing_key="ticket_assigned"):
    with Connection(uri, transport_options={"confirm_publish": True}) as connection:
        channel = connection.channel()
        exchange(channel).declare()
        Producer(channel).publish({"forged": True}, exchange=exchange, routing_key=routing_key, serializer="json")


def test_a_service_publishes_its_own_events_and_rpc_but_never_another_services_events(users):
    stack, uri = users
    kb_events, _ = event_exchanges("kb_search")
    publish(uri("kb_search"), kb_events, "article_published")
    publish(uri("kb_search"), Exchange("nameko-rpc", type="topic", durable=True), "tickets.get_ticket")
    for source in ("tickets", "routing", "intake", "gateway"):
        for exchange in event_exchanges(source):
            with pytest.raises(AccessRefused):
                publish(uri("kb_search"), exchange)
    with pytest.raises(AccessRefused):  # and the gateway cannot pose as routing either
        publish(uri("gateway"), event_exchanges("routing")[0])
    publish(uri("gateway"), event_exchanges("gateway")[0], "audit_recorded")


def test_the_permissions_name_only_the_services_own_event_exchanges():
    write = permissions("routing")["write"]
    assert "routing\\.(events|batches)" in write and "tickets" not in write


def test_the_platform_runs_with_every_process_on_its_own_user(users):
    stack, uri = users
    stack.migrate()
    stack.start_tickets(HELPDESK_AMQP_URI=uri("tickets"))
    for name in stack.service_names:
        stack.start_service(name, HELPDESK_AMQP_URI=uri(name))
    stack.extra_env["HELPDESK_AMQP_URI"] = uri("gateway")
    stack.start_gateway()
    stack.wait_healthy()
    api = stack.session()
    number = api.post(f"{stack.url}/api/v1/tickets", json=new_ticket(), timeout=10).json()["number"]
    assert api.post(f"{stack.url}/api/v1/teams", json={"name": "broker"}, timeout=10).status_code == 201

    def routed():  # routing heard ticket_created and its decision came back to tickets (events both ways)
        answer = api.get(f"{stack.url}/api/v1/tickets/{number}/routing", timeout=10)
        return answer.status_code == 200 and answer.json()
    from stack import wait_for
    assert wait_for(routed, timeout=30, what="routing's record of the ticket")
