"""Live chat in the intake service, on a real RabbitMQ with the real tickets service: who may take a chat,
the sweep that turns unanswered chats into tickets, and a transcript that reaches its ticket after the
tickets service was away, once."""
import pytest
from sqlalchemy import select

from viewers import ADMIN, AGENT
from helpdesk_common.contracts.intake import RateLimited
from helpdesk_common.errors import Conflict, Forbidden, NotFound
from helpdesk_common.testing import wait_for
from helpdesk_intake.models import ChatEntry

VISITOR = {"actor": "anonymous", "role": "anonymous"}


@pytest.fixture
def chat_timeout():
    return 3600  # nobody's chat ends by itself unless a test says so


@pytest.fixture
def intake_config(intake_config, chat_timeout):
    return {**intake_config, "CHAT_ANSWER_TIMEOUT": chat_timeout, "CHAT_SWEEP_INTERVAL": 0.2,
            "CHAT_SETTLE_AFTER": 0.5, "CHAT_TICKETS_PATIENCE": 2, "CHAT_START_LIMIT": 3}


def start(intake_rpc, message="The printer is on fire.", email="eva@example.se"):
    return intake_rpc.start_chat({"name": "Eva", "email": email, "message": message}, VISITOR)


def test_one_agent_takes_a_chat_and_a_second_is_refused(intake_rpc, tickets_rpc):
    started = start(intake_rpc)
    chat_id = started["chat"]["id"]
    first = intake_rpc.join_chat(chat_id, AGENT)
    assert first["state"] == "active" and first["agent"] == "agent-7" and first["ticket_number"]
    assert intake_rpc.join_chat(chat_id, AGENT)["ticket_number"] == first["ticket_number"]  # a repeat is harmless
    with pytest.raises(Conflict) as taken:
        intake_rpc.join_chat(chat_id, {"actor": "agent-8", "role": "agent"})
    assert taken.value.code == "chat_taken"
    with pytest.raises(Forbidden):
        intake_rpc.join_chat(chat_id, {"actor": "eva", "role": "customer", "email": "eva@example.se"})
    timeline = intake_rpc.chat_entries(chat_id, {}, VISITOR, started["token"])
    assert [e["kind"] for e in timeline["entries"]] == ["message", "joined"]
    with pytest.raises(NotFound):
        intake_rpc.chat_entries(chat_id, {}, VISITOR, "not-the-token")
    ticket = tickets_rpc.get_ticket(first["ticket_number"], ADMIN)
    assert (ticket["channel"], ticket["description"], ticket["tags"]) == ("chat", "The printer is on fire.", ["chat"])


@pytest.mark.parametrize("chat_timeout", [1])
def test_a_chat_nobody_answers_becomes_a_ticket_with_the_whole_transcript(intake_rpc, tickets_rpc):
    started = start(intake_rpc)
    chat_id, token = started["chat"]["id"], started["token"]
    intake_rpc.post_chat_message(chat_id, {"body": "Hello? It is spreading."}, VISITOR, token)

    def ended():
        chat = intake_rpc.chat_entries(chat_id, {}, VISITOR, token)["chat"]
        return chat["state"] == "ended" and chat["ticket_number"] and chat

    chat = wait_for(ended, timeout=30, message="the sweep to end the unanswered chat")
    assert chat["outcome"] == "unanswered" and chat["agent"] is None
    ticket = tickets_rpc.get_ticket(chat["ticket_number"], ADMIN)
    assert ticket["tags"] == ["chat", "chat-unanswered"] and ticket["assignee"] is None
    messages = wait_for(lambda: tickets_rpc.list_messages(chat["ticket_number"], ADMIN), timeout=15,
                        message="the customer's second message on the ticket")
    assert [(m["body"], m["author"], m["author_role"]) for m in messages] == [
        ("Hello? It is spreading.", "eva@example.se", "customer")]


def test_a_transcript_reaches_its_ticket_once_after_tickets_was_away(intake_rpc, tickets_rpc, tickets_service,
                                                                     tickets_config, container_factory,
                                                                     intake_sessions):
    from helpdesk_tickets.service import TicketsService

    started = start(intake_rpc)
    chat_id = started["chat"]["id"]
    number = intake_rpc.join_chat(chat_id, AGENT)["ticket_number"]
    tickets_service.stop()
    # the chat goes on: the post answers (after the patience of 2 s), the message is in the timeline
    entry = intake_rpc.post_chat_message(chat_id, {"body": "Unplug it, please."}, AGENT)
    assert entry["seq"] == 3
    container_factory(TicketsService, tickets_config).start()

    def transcribed():
        messages = tickets_rpc.list_messages(number, ADMIN)
        return messages and messages

    messages = wait_for(transcribed, timeout=30, message="the agent's message on the ticket")

    def settled():
        with intake_sessions() as session:
            return session.scalar(select(ChatEntry.in_ticket).where(ChatEntry.chat_id == chat_id, ChatEntry.seq == 3))

    wait_for(settled, timeout=30, message="intake to know the message is on the ticket")
    assert [m["body"] for m in tickets_rpc.list_messages(number, ADMIN)] == ["Unplug it, please."]  # once
    intake_rpc.post_chat_message(chat_id, {"body": "Thanks."}, AGENT)
    final = wait_for(lambda: len(tickets_rpc.list_messages(number, ADMIN)) >= 2
                     and tickets_rpc.list_messages(number, ADMIN), timeout=30, message="the second message")
    assert [(m["body"], m["author"]) for m in final] == [("Unplug it, please.", "agent-7"), ("Thanks.", "agent-7")]
    assert messages[0]["body"] == "Unplug it, please."


def test_one_address_cannot_start_chats_without_end(intake_rpc):
    for n in range(3):
        start(intake_rpc, message=f"Question {n}", email="flood@example.com")
    with pytest.raises(RateLimited) as limited:
        start(intake_rpc, message="Question 4", email="FLOOD@example.com")
    assert limited.value.code == "rate_limited" and "flood@example.com" in limited.value.message
    assert start(intake_rpc, email="someone.else@example.com")["chat"]["state"] == "waiting"
    waiting = [c for c in intake_rpc.list_chats({"state": "waiting"}, ADMIN)
               if c["customer"]["email"] == "flood@example.com"]
    assert len(waiting) == 3  # the refused start left nothing behind
