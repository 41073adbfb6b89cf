"""Mentions in notes and followed tickets notify agents, in the transaction of the change itself."""
import pytest

from helpdesk_common.contracts.tickets import NewMessage, NotificationsRead, Viewer
from helpdesk_common.errors import Forbidden, ValidationFailed
from ticket_changes import change_ticket
from helpdesk_tickets import domain, followers

ADA, BO = Viewer(actor="agent-1", role="agent"), Viewer(actor="agent-2", role="agent")


def _note(sessions, rules, viewer, number, body, mentions=(), visibility="internal"):
    command = NewMessage(body=body, visibility=visibility, mentions=list(mentions))
    with sessions.begin() as session:
        return domain.add_message(session, number, command, viewer, rules)


def _inbox(sessions, viewer):
    with sessions() as session:
        return followers.notifications(session, viewer)


def test_a_mention_in_a_note_notifies_that_agent_only(sessions, rules, open_ticket, admin):
    number = open_ticket()["number"]
    _note(sessions, rules, admin, number, "@ada can you check the MTU?", mentions=["agent-1", "agent-1"])
    inbox = _inbox(sessions, ADA)
    assert inbox["unread"] == 1
    (item,) = inbox["items"]
    assert (item["ticket_number"], item["kind"], item["actor"], item["detail"]) == (
        number, "mention", "ada", {"excerpt": "@ada can you check the MTU?"})
    assert _inbox(sessions, BO) == {"items": [], "unread": 0}


def test_mentions_in_a_reply_to_the_customer_are_refused_and_nothing_is_written(sessions, rules, open_ticket, admin):
    number = open_ticket()["number"]
    with pytest.raises(ValidationFailed) as refused:
        _note(sessions, rules, admin, number, "@ada hello", mentions=["agent-1"], visibility="public")
    assert refused.value.code == "mentions_in_notes_only"
    with sessions() as session:
        assert domain.list_messages(session, number, admin) == []


def test_followers_hear_of_messages_and_changes_but_not_of_their_own(sessions, rules, open_ticket, admin):
    number = open_ticket()["number"]
    with sessions.begin() as session:
        assert followers.follow(session, number, ADA)["followers"] == ["agent-1"]
    with sessions.begin() as session:
        state = followers.follow(session, number, BO)
    assert (state["following"], state["followers"]) == (True, ["agent-1", "agent-2"])
    _note(sessions, rules, admin, number, "Customer called", visibility="public")
    change_ticket(sessions, rules, ADA, number, priority="urgent")
    assert [(n["kind"], n["detail"]) for n in _inbox(sessions, BO)["items"]] == [
        ("change", {"fields": ["priority"]}), ("message", {"visibility": "public"})]
    assert [n["kind"] for n in _inbox(sessions, ADA)["items"]] == ["message"]  # not of her own change
    with sessions.begin() as session:
        assert followers.follow(session, number, BO, following=False)["followers"] == ["agent-1"]
    change_ticket(sessions, rules, ADA, number, priority="low")
    assert len(_inbox(sessions, BO)["items"]) == 2


def test_marking_read_touches_only_ones_own(sessions, rules, open_ticket, admin):
    number = open_ticket()["number"]
    _note(sessions, rules, admin, number, "@ada @bo look", mentions=["agent-1", "agent-2"])
    theirs = _inbox(sessions, BO)["items"][0]["id"]
    with sessions.begin() as session:
        followers.mark_read(session, NotificationsRead(ids=[theirs]), ADA)
    assert _inbox(sessions, BO)["unread"] == 1
    with sessions.begin() as session:
        assert followers.mark_read(session, NotificationsRead(all=True), ADA)["unread"] == 0
    with sessions.begin() as session, pytest.raises(ValidationFailed):
        followers.mark_read(session, NotificationsRead(), BO)


def test_customers_neither_follow_nor_get_notifications(sessions, open_ticket, customer):
    number = open_ticket(requester={"email": "carol@example.com"})["number"]
    with sessions.begin() as session, pytest.raises(Forbidden):
        followers.follow(session, number, customer)
    with sessions() as session, pytest.raises(Forbidden):
        followers.notifications(session, customer)


def test_each_batch_of_notifications_is_announced_with_its_recipients_only(sessions, rules, open_ticket, admin,
                                                                            outbox_rows):
    number = open_ticket()["number"]
    with sessions.begin() as session:
        followers.follow(session, number, BO)
    _note(sessions, rules, admin, number, "@ada look", mentions=["agent-1"])
    change_ticket(sessions, rules, BO, number, priority="urgent")  # its only follower made it: nobody told
    announced = [(row.envelope["data"]["kind"], row.envelope["data"]["recipients"], row.envelope["subject"])
                 for row in outbox_rows("agents_notified")]
    assert announced == [("mention", ["agent-1"], number), ("message", ["agent-2"], number)]
