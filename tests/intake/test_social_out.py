"""Public replies on social tickets go out through a signed webhook to a real HTTP receiver on loopback;
failures are retried with backoff, then parked where an operator replays them; notes never leave."""
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from viewers import ADMIN, AGENT
from servers import wait_for
from helpdesk_common.adapters.consumer import reliable_handler
from helpdesk_common.adapters.parking import list_parked, replay
from helpdesk_common.webhooks import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from helpdesk_intake.models import Outbox

SECRET = "connector-secret"


class Connector:
    """A social connector's webhook endpoint: records every request; answers ``failures`` first."""

    def __init__(self):
        self.requests = []
        self.failures = []  # statuses to answer, in order, before answering 200
        connector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                connector.requests.append((dict(self.headers), body))
                status = connector.failures.pop(0) if connector.failures else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b'{"ok": true}' if status == 200 else b'{"error": "try later"}')

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/replies"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def bodies(self):
        return [json.loads(body) for _, body in self.requests]


@pytest.fixture
def connector():
    server = Connector()
    yield server
    server.stop()


@pytest.fixture
def social_config(intake_config, connector):
    return {**intake_config, "SOCIAL_CONNECTOR_URL": connector.url, "SOCIAL_CONNECTOR_SECRET": SECRET,
            "SOCIAL_CONNECTOR_ALLOW_INTERNAL": True}  # the stand-in connector listens on loopback


def social_ticket(intake_rpc):
    thread = f"t-{uuid.uuid4().hex[:6]}"
    answer = intake_rpc.receive_social_message({
        "platform": "mastodon", "message_id": f"m-{thread}", "thread_id": thread, "handle": "@eva@social.example",
        "name": "Eva", "text": "Your app crashes on start."})
    return answer["ticket_number"], thread


def start_intake(container_factory, config, service_class=None):
    from helpdesk_intake.service import IntakeService

    container = container_factory(service_class or IntakeService, config)
    container.start()
    return container


def test_a_public_reply_goes_out_signed_after_a_failure_and_notes_never(container_factory, social_config,
                                                                        tickets_service, tickets_rpc, connector,
                                                                        intake_sessions):
    start_intake(container_factory, social_config)
    from nameko.standalone.rpc import ServiceRpcProxy
    with ServiceRpcProxy("intake", social_config, timeout=15) as intake_rpc:
        number, thread = social_ticket(intake_rpc)
    connector.failures = [503]  # the connector is down at first
    tickets_rpc.add_message(number, {"body": "Internal: looks like bug 4711.", "visibility": "internal"}, AGENT)
    reply = tickets_rpc.add_message(number, {"body": "Fixed in 2.3.1, please update.", "visibility": "public"},
                                    AGENT)
    wait_for(lambda: len(connector.requests) >= 2, timeout=30, what="the reply, retried after the 503")

    (first_headers, _), (headers, body) = connector.requests
    assert headers[SIGNATURE_HEADER] == sign(SECRET, headers[TIMESTAMP_HEADER], body)
    assert headers[DELIVERY_HEADER] == first_headers[DELIVERY_HEADER]  # one delivery id across retries
    sent = json.loads(body)
    assert {k: sent[k] for k in ("ticket_number", "message_id", "platform", "thread_id", "handle", "text",
                                 "author")} == {
        "ticket_number": number, "message_id": reply["id"],
        "platform": "mastodon", "thread_id": thread, "handle": "@eva@social.example",
        "text": "Fixed in 2.3.1, please update.", "author": AGENT["actor"]}
    assert sent["delivery_id"] == headers[DELIVERY_HEADER]

    def recorded():
        with intake_sessions() as session:
            return [row.envelope["data"] for row in session.scalars(
                select(Outbox).where(Outbox.event_type == "social_reply_sent"))]
    (event,) = wait_for(recorded, what="social_reply_sent")
    assert event["status"] == 200 and event["delivery_id"] == sent["delivery_id"]
    # the customer's own messages do not go back out either
    with ServiceRpcProxy("intake", social_config, timeout=15) as intake_rpc:
        intake_rpc.receive_social_message({"platform": "mastodon", "message_id": f"m2-{thread}", "thread_id": thread,
                                           "handle": "@eva@social.example", "text": "Thanks!"})
    wait_for(lambda: len(tickets_rpc.list_messages(number, ADMIN)) == 3, what="the customer's answer")
    assert [b["text"] for b in connector.bodies()] == ["Fixed in 2.3.1, please update."] * 2


def test_the_satisfaction_survey_goes_out_and_what_came_in_on_the_channel_never(container_factory, social_config,
                                                                              tickets_service, tickets_rpc,
                                                                              connector):
    """What the platform says to the customer (the surveys service's CSAT message with its link) goes to the
    customer's platform like an agent's reply; a system message intake wrote (what came in) does not."""
    start_intake(container_factory, social_config)
    from nameko.standalone.rpc import ServiceRpcProxy
    with ServiceRpcProxy("intake", social_config, timeout=15) as intake_rpc:
        number, thread = social_ticket(intake_rpc)
    tickets_rpc.add_message(number, {"body": "Forwarded from the thread", "visibility": "public"},
                            {"actor": "intake", "role": "system"})
    survey = "Your request is resolved. Rate it here: http://127.0.0.1:8000/help/satisfaction/abc.def"
    tickets_rpc.add_message(number, {"body": survey, "visibility": "public"}, {"actor": "surveys", "role": "system"},
                            "csat:1")
    wait_for(lambda: connector.requests, timeout=30, what="the survey sent to the connector")
    tickets_rpc.add_message(number, {"body": "A note after it", "visibility": "internal"}, AGENT)
    tickets_rpc.add_message(number, {"body": "Anything else?", "visibility": "public"}, AGENT)
    wait_for(lambda: len(connector.requests) >= 2, timeout=30, what="the agent's reply after it")
    assert [(b["text"], b["author"]) for b in connector.bodies()] == [(survey, "surveys"),
                                                                     ("Anything else?", AGENT["actor"])]


def test_a_reply_the_connector_keeps_refusing_is_parked_and_replayed(container_factory, social_config,
                                                                     tickets_service, tickets_rpc, connector,
                                                                     rabbit_config):
    from helpdesk_intake import social
    from helpdesk_intake.service import IntakeService

    class QuickIntake(IntakeService):
        """Intake with the social reply's backoff cut to fractions of a second (the only change), so the
        test sees the retries run out in seconds rather than the production schedule's 20 minutes."""

        @reliable_handler("intake", "social_reply_queued", max_attempts=3, backoff=(0.2, 0.3))
        def deliver_social_reply(self, event):
            social.deliver_once(self.db, self.settings, event)

    start_intake(container_factory, social_config, QuickIntake)
    from nameko.standalone.rpc import ServiceRpcProxy
    with ServiceRpcProxy("intake", social_config, timeout=15) as intake_rpc:
        number, _ = social_ticket(intake_rpc)
    connector.failures = [500, 502, 503]
    tickets_rpc.add_message(number, {"body": "We are on it.", "visibility": "public"}, AGENT)
    amqp = rabbit_config["AMQP_URI"]
    (parked,) = wait_for(lambda: list_parked(amqp, handler="intake.deliver_social_reply"), timeout=30,
                         what="the reply to be parked")
    assert len(connector.requests) == 3 and parked.attempts == 3 and "HTTP 503" in parked.error

    result = replay(amqp, parked.message_id, handler="intake.deliver_social_reply")  # the connector is back
    assert len(result.replayed) == 1
    wait_for(lambda: len(connector.requests) == 4, what="the replayed delivery")
    assert connector.bodies()[-1]["text"] == "We are on it."
    assert list_parked(amqp, handler="intake.deliver_social_reply") == []

    # a 4xx refusal is parked at once: no retry would change the connector's mind
    connector.failures = [400]
    tickets_rpc.add_message(number, {"body": "Another answer.", "visibility": "public"}, AGENT)
    (refused,) = wait_for(lambda: list_parked(amqp, handler="intake.deliver_social_reply"), timeout=30,
                          what="the refused reply to be parked")
    assert len(connector.requests) == 5 and refused.attempts == 1 and "HTTP 400" in refused.error
