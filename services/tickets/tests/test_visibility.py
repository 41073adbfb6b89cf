"""Who sees what: customers their own tickets and public replies; agents their teams' tickets."""
import pytest

from helpdesk_common.contracts.tickets import NewMessage, TicketChanges, TicketQuery, Viewer
from helpdesk_common.errors import Forbidden, NotFound
from helpdesk_tickets import domain


def _find(sessions, number, viewer):
    with sessions() as session:
        return domain.ticket_view(domain.find_ticket(session, number, viewer))


def _numbers(sessions, viewer, **filters):
    with sessions() as session:
        page = domain.find_tickets(session, TicketQuery.model_validate({"limit": 100, **filters}), viewer)
    return sorted(t["number"] for t in page["items"])


def _reply(sessions, rules, viewer, number, body="hi", visibility="public"):
    with sessions.begin() as session:
        return domain.add_message(session, number, NewMessage(body=body, visibility=visibility), viewer, rules)


@pytest.fixture
def carols_and_daves(open_ticket):
    carol = open_ticket(requester={"email": "carol@example.com"})["number"]
    dave = open_ticket(requester={"email": "dave@example.com"})["number"]
    return carol, dave


# --- customers -----------------------------------------------------------------------------------

def test_customer_sees_their_own_ticket(sessions, customer, carols_and_daves):
    carol, _ = carols_and_daves
    assert _find(sessions, carol, customer)["number"] == carol


def test_customer_email_matches_whatever_its_case(sessions, carols_and_daves):
    carol, _ = carols_and_daves
    shouting = Viewer(actor="carol", role="customer", email="CAROL@Example.COM")
    assert _find(sessions, carol, shouting)["number"] == carol


def test_another_customers_ticket_looks_like_a_missing_one(sessions, customer, carols_and_daves):
    _, dave = carols_and_daves
    with pytest.raises(NotFound) as other:
        _find(sessions, dave, customer)
    with pytest.raises(NotFound) as missing:
        _find(sessions, "T1999-00042", customer)
    assert other.value.code == missing.value.code == "ticket_not_found"
    assert other.value.status == 404


def test_customer_without_email_sees_nothing(sessions, carols_and_daves):
    nobody = Viewer(actor="ghost", role="customer")
    with pytest.raises(NotFound):
        _find(sessions, carols_and_daves[0], nobody)
    assert _numbers(sessions, nobody) == []


def test_customer_lists_only_their_own_tickets(sessions, customer, other_customer, carols_and_daves):
    carol, dave = carols_and_daves
    assert _numbers(sessions, customer) == [carol]
    assert _numbers(sessions, other_customer) == [dave]
    assert _numbers(sessions, customer, requester="dave@example.com") == []
    assert _numbers(sessions, customer, requester="carol@example.com") == [carol]


def test_customer_never_sees_internal_notes(sessions, rules, agent, customer, carols_and_daves):
    carol, _ = carols_and_daves
    _reply(sessions, rules, agent, carol, body="public answer")
    _reply(sessions, rules, agent, carol, body="customer is grumpy", visibility="internal")
    _reply(sessions, rules, customer, carol, body="thanks")
    with sessions() as session:
        seen_by_customer = domain.list_messages(session, carol, customer)
        seen_by_agent = domain.list_messages(session, carol, agent)
    assert [m["body"] for m in seen_by_customer] == ["public answer", "thanks"]
    assert [m["body"] for m in seen_by_agent] == ["public answer", "customer is grumpy", "thanks"]


def test_customer_cannot_add_internal_notes(sessions, rules, customer, carols_and_daves):
    carol, _ = carols_and_daves
    with pytest.raises(Forbidden) as caught:
        _reply(sessions, rules, customer, carol, visibility="internal")
    assert caught.value.code == "agents_only"
    with sessions() as session:
        assert domain.list_messages(session, carol, customer) == []


def test_customer_cannot_reply_on_another_customers_ticket(sessions, rules, customer, carols_and_daves):
    _, dave = carols_and_daves
    with pytest.raises(NotFound):
        _reply(sessions, rules, customer, dave)


@pytest.mark.parametrize("changes", [{"priority": "urgent"}, {"status": "closed"}, {"assignee": "carol"}])
def test_customer_cannot_change_tickets_even_their_own(sessions, rules, customer, carols_and_daves, changes):
    carol, _ = carols_and_daves
    with pytest.raises(Forbidden) as caught:
        with sessions.begin() as session:
            domain.change_ticket(session, carol, TicketChanges.model_validate(changes), customer, rules)
    assert caught.value.code == "agents_only"
    assert _find(sessions, carol, customer)["status"] == "new"
    assert _find(sessions, carol, customer)["priority"] == "normal"


def test_customer_cannot_read_the_history(sessions, customer, carols_and_daves):
    with pytest.raises(Forbidden):
        with sessions() as session:
            domain.history(session, carols_and_daves[0], customer)


# --- agents and teams ----------------------------------------------------------------------------

@pytest.fixture
def team_tickets(open_ticket):
    return {team: open_ticket(team=team)["number"] for team in ("billing", "hardware", "sales", None)}


def test_agent_of_some_teams_sees_those_teams_and_unassigned_tickets(sessions, team_tickets):
    agent = Viewer(actor="alan", role="agent", teams=["billing", "hardware"])
    expected = sorted([team_tickets["billing"], team_tickets["hardware"], team_tickets[None]])
    assert _numbers(sessions, agent) == expected
    for team in ("billing", "hardware", None):
        assert _find(sessions, team_tickets[team], agent)["team"] == team
    with pytest.raises(NotFound):
        _find(sessions, team_tickets["sales"], agent)
    assert _numbers(sessions, agent, team="sales") == []


def test_agent_cannot_act_on_another_teams_ticket(sessions, rules, team_tickets):
    agent = Viewer(actor="alan", role="agent", teams=["billing"])
    sales = team_tickets["sales"]
    with pytest.raises(NotFound):
        with sessions.begin() as session:
            domain.change_ticket(session, sales, TicketChanges(priority="low"), agent, rules)
    with pytest.raises(NotFound):
        _reply(sessions, rules, agent, sales)
    with pytest.raises(NotFound):
        with sessions() as session:
            domain.list_messages(session, sales, agent)
    with pytest.raises(NotFound):
        with sessions() as session:
            domain.history(session, sales, agent)


def test_agent_without_teams_and_admin_see_everything(sessions, agent, admin, team_tickets):
    everything = sorted(team_tickets.values())
    assert _numbers(sessions, agent) == everything
    assert _numbers(sessions, admin) == everything
    assert _numbers(sessions, Viewer(actor="admin2", role="admin", teams=["billing"])) == everything


# --- visitors --------------------------------------------------------------------------------------

def test_an_anonymous_viewer_sees_no_ticket_at_all(sessions, carols_and_daves):
    visitor = Viewer(actor="anonymous", role="anonymous")
    carol, _ = carols_and_daves
    assert _numbers(sessions, visitor) == []
    with pytest.raises(NotFound):
        _find(sessions, carol, visitor)
