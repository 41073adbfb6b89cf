"""Live chat in the intake service, on a real RabbitMQ with the real tickets service: who may take a chat,
the sweep that turns unanswered chats into tickets, and a transcript that reaches its ticket after the
tickets service was away, once."""
import pytest
from sqlalchemy import func, select

from viewers import ADMIN, AGENT
from helpdesk_common.contracts.intake import RateLimited
from helpdesk_common.errors import Conflict, Forbidden, NotFound
from helpdesk_common.testing import wait_for
from helpdesk_intake.models import ChatEntry, ProcessedEvent

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


SURVEYS = {"actor": "surveys", "role": "system"}  # who writes the satisfaction survey on a resolved ticket


def test_what_the_platform_says_on_the_ticket_reaches_the_open_chat_once_and_an_ended_chat_never(
        intake_rpc, tickets_rpc, intake_sessions):
    """The survey the surveys service writes on a resolved chat ticket is posted into the chat while the
    customer is in it (their widget shows it live: ``chat_message_posted``), not copied back onto the ticket;
    what intake itself wrote (what came in on a channel) and the agent's notes stay on the ticket."""
    started = start(intake_rpc, email="stina@example.se")
    chat_id, token = started["chat"]["id"], started["token"]
    number = intake_rpc.join_chat(chat_id, AGENT)["ticket_number"]
    survey = "Your request is resolved. Rate it here: http://127.0.0.1:8000/help/satisfaction/abc.def"
    tickets_rpc.add_message(number, {"body": survey, "visibility": "public"}, SURVEYS, "csat:1")
    tickets_rpc.add_message(number, {"body": "INTERNAL", "visibility": "internal"}, AGENT)
    tickets_rpc.add_message(number, {"body": "Call record", "visibility": "public"},
                            {"actor": "intake", "role": "system"})

    def said():
        return [e for e in intake_rpc.chat_entries(chat_id, {}, VISITOR, token)["entries"] if e["kind"] == "message"
                and e["author_role"] == "system"]

    (entry,) = wait_for(said, timeout=15, message="the survey in the chat")
    assert (entry["body"], entry["author"]) == (survey, "surveys")
    intake_rpc.post_chat_message(chat_id, {"body": "Done, thanks"}, VISITOR, token)  # the transcript goes on
    wait_for(lambda: any(m["body"] == "Done, thanks" for m in tickets_rpc.list_messages(number, ADMIN)), timeout=15,
             message="the customer's message on the ticket")
    bodies = [m["body"] for m in tickets_rpc.list_messages(number, ADMIN)]
    assert bodies.count(survey) == 1 and "Call record" in bodies  # not copied back onto the ticket
    assert [e["body"] for e in said()] == [survey]  # neither the note nor intake's own message went in
    with intake_sessions() as session:
        assert session.scalar(select(ChatEntry.in_ticket).where(ChatEntry.chat_id == chat_id,
                                                                ChatEntry.author == "surveys")) is True
    intake_rpc.leave_chat(chat_id, VISITOR, token)

    def handled():  # message_added events intake's handler has taken
        with intake_sessions() as session:
            return session.scalar(select(func.count()).select_from(ProcessedEvent).where(
                ProcessedEvent.handler == "intake.on_message_added"))

    wait_for(lambda: handled() >= 4, timeout=15, message="intake to take the messages so far")  # 3 + "Done"
    before = handled()
    tickets_rpc.add_message(number, {"body": "Another notice", "visibility": "public"}, SURVEYS, "notice:2")
    wait_for(lambda: handled() > before, timeout=15, message="intake to take the notice's message_added")
    kinds = [e["kind"] for e in intake_rpc.chat_entries(chat_id, {}, VISITOR, token)["entries"]]
    assert kinds[-1] == "ended" and [e["body"] for e in said()] == [survey]  # the ended chat gets nothing
