"""Who has a ticket open and who types: collision warnings, with an explicit clock."""
from datetime import datetime, timedelta, timezone

import pytest

from helpdesk_common.contracts.tickets import Viewer
from helpdesk_common.errors import Forbidden, NotFound
from helpdesk_tickets import presence

ADA, BO = Viewer(actor="agent-1", role="agent"), Viewer(actor="agent-2", role="agent")
NOON = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)


def _here(sessions, number, viewer, typing=False, now=NOON, name=None):
    with sessions.begin() as session:
        return presence.here(session, number, viewer, typing, name, now)


def test_an_agent_sees_a_colleague_on_the_same_ticket_and_whether_they_type(sessions, open_ticket):
    number = open_ticket()["number"]
    assert _here(sessions, number, ADA, name="Ada")["others"] == []
    seen = _here(sessions, number, BO, typing=True, now=NOON + timedelta(seconds=2), name="Bo")["others"]
    assert [(o["actor"], o["name"], o["typing"]) for o in seen] == [("agent-1", "Ada", False)]
    with sessions() as session:
        others = presence.present(session, number, ADA, NOON + timedelta(seconds=3))["others"]
    assert [(o["actor"], o["typing"]) for o in others] == [("agent-2", True)]


def test_a_colleague_not_seen_for_the_window_is_gone(sessions, open_ticket):
    number = open_ticket()["number"]
    _here(sessions, number, ADA)
    later = NOON + presence.WINDOW + timedelta(seconds=1)
    assert _here(sessions, number, BO, now=later)["others"] == []


def test_customers_and_agents_who_cannot_see_the_ticket_get_nothing(sessions, open_ticket, customer):
    number = open_ticket(team="billing", requester={"email": "carol@example.com"})["number"]
    with pytest.raises(Forbidden):
        _here(sessions, number, customer)
    with pytest.raises(NotFound):
        _here(sessions, number, Viewer(actor="al", role="agent", teams=["network"]))


def test_arrivals_departures_and_typing_are_announced_but_a_mere_still_here_is_not(sessions, open_ticket,
                                                                                   outbox_rows):
    number = open_ticket()["number"]
    _here(sessions, number, ADA, name="Ada")
    _here(sessions, number, ADA, typing=None, now=NOON + timedelta(seconds=5), name="Ada")  # still here
    _here(sessions, number, ADA, typing=True, now=NOON + timedelta(seconds=6), name="Ada")
    _here(sessions, number, ADA, typing=None, now=NOON + timedelta(seconds=8), name="Ada")  # still typing
    with sessions() as session:
        assert presence.present(session, number, BO, NOON + timedelta(seconds=9))["others"][0]["typing"] is True
    with sessions.begin() as session:
        presence.here(session, number, ADA, None, "Ada", NOON + timedelta(seconds=10), present=False)
    with sessions() as session:
        assert presence.present(session, number, BO, NOON + timedelta(seconds=11))["others"] == []
    said = [(row.envelope["data"]["actor"], row.envelope["data"]["present"], row.envelope["data"]["typing"])
            for row in outbox_rows("ticket_presence_changed")]
    assert said == [("agent-1", True, False), ("agent-1", True, True), ("agent-1", False, False)]
