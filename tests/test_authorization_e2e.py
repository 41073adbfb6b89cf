"""Issue 17, items 1 and 2, end to end: the probes that found the holes, each against the running platform.

An agent limited to team ``alpha`` must not escalate team ``beta``'s ticket into ``alpha`` (and then read
its internal notes), reassign it, list ``beta``'s queue or set a ``beta`` agent's presence; a customer
must not open a ticket with another contact's phone number or social handle (and learn that contact's
name and address). Each of these passed before the fix.
"""
import uuid

import pytest

from stack import create_token, new_ticket, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def world(platform):
    """Two teams with one agent each (tokens carry the same email as their routing agent), a ticket in
    ``beta`` with an internal note, a customer, and a contact known by a phone number and a handle."""
    tag = uuid.uuid4().hex[:6]
    api, url = platform.session(), platform.url

    def ok(response, status=(200, 201)):
        assert response.status_code in status, response.text
        return response.json()

    alpha, beta = f"alpha-{tag}", f"beta-{tag}"
    for team in (alpha, beta):
        ok(api.post(f"{url}/api/v1/teams", json={"name": team}))
    agents = {team: ok(api.post(f"{url}/api/v1/agents", json={
        "name": f"Agent {team}", "email": f"agent-{team}@example.com", "teams": [team], "presence": "away"}))
        for team in (alpha, beta)}
    tokens = {team: create_token(platform, "agent", email=f"agent-{team}@example.com", teams=[team])
              for team in (alpha, beta)}
    ticket = ok(api.post(f"{url}/api/v1/tickets", json=new_ticket(team=beta, subject="Beta's secret")))
    number = ticket["number"]
    ok(api.post(f"{url}/api/v1/tickets/{number}/messages", json={"body": "internal: root password is hunter2",
                                                                    "visibility": "internal"}))
    wait_for(lambda: api.get(f"{url}/api/v1/tickets/{number}/routing").status_code == 200, timeout=30,
             what="routing to know the ticket")
    victim = ok(api.post(f"{url}/api/v1/contacts", json={"name": "Victor Victim", "identifiers": [
        {"kind": "email", "value": f"victor-{tag}@example.com"}, {"kind": "phone", "value": "+46 70 765 43 21"},
        {"kind": "social", "platform": "mastodon", "value": f"victor{tag}"}]}))
    customer_email = f"mallory-{tag}@example.com"
    return {"url": url, "admin": api, "alpha": alpha, "beta": beta, "agents": agents, "number": number,
            "victim": victim, "tag": tag, "customer_email": customer_email,
            "as_alpha": platform.session(tokens[alpha]), "as_beta": platform.session(tokens[beta]),
            "as_customer": platform.session(create_token(platform, "customer", email=customer_email))}


def test_an_agent_cannot_escalate_another_teams_ticket_into_their_own_team(world):
    url, number, alpha = world["url"], world["number"], world["alpha"]
    answer = world["as_alpha"].post(f"{url}/api/v1/tickets/{number}/escalations",
                                    json={"reason": "mine now", "to_team": alpha})
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["code"] == "ticket_not_found"
    assert world["admin"].get(f"{url}/api/v1/tickets/{number}").json()["team"] == world["beta"]
    notes = world["as_alpha"].get(f"{url}/api/v1/tickets/{number}/messages")
    assert notes.status_code == 404 and "hunter2" not in notes.text
    # the routing record answers as a missing ticket does, too
    assert world["as_alpha"].get(f"{url}/api/v1/tickets/{number}/routing").status_code == 404
    # the ticket's own team may escalate it
    assert world["as_beta"].post(f"{url}/api/v1/tickets/{number}/escalations",
                                 json={"reason": "needs tier 2"}).status_code == 201


def test_an_agent_cannot_reassign_another_teams_ticket(world):
    url, number = world["url"], world["number"]
    me = world["agents"][world["alpha"]]
    answer = world["as_alpha"].put(f"{url}/api/v1/tickets/{number}/assignment",
                                   json={"agent_id": me["id"], "reason": "I'll take it"})
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["code"] == "ticket_not_found"
    routed = world["admin"].get(f"{url}/api/v1/tickets/{number}/routing").json()
    assert routed["agent_id"] != me["id"]


def test_an_agent_lists_only_their_teams_queues(world):
    url, alpha, beta = world["url"], world["alpha"], world["beta"]
    other = world["as_alpha"].get(f"{url}/api/v1/routing/queue", params={"team": beta})
    assert other.status_code == 403, other.text
    assert other.json()["error"]["code"] == "team_not_allowed"
    assert world["as_alpha"].get(f"{url}/api/v1/routing/queue", params={"team": alpha}).status_code == 200
    everything = world["as_alpha"].get(f"{url}/api/v1/routing/queue", params={"limit": 500})
    assert everything.status_code == 200
    assert {t["team"] for t in everything.json()} <= {alpha, None}
    assert world["number"] not in [t["number"] for t in everything.json()]


def test_an_agent_sets_only_their_own_presence(world):
    url = world["url"]
    theirs, mine = world["agents"][world["beta"]], world["agents"][world["alpha"]]
    answer = world["as_alpha"].put(f"{url}/api/v1/agents/{theirs['id']}/presence", json={"presence": "offline"})
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"]["code"] == "not_your_agent"
    assert world["admin"].get(f"{url}/api/v1/agents/{theirs['id']}").json()["presence"] == "away"
    own = world["as_alpha"].put(f"{url}/api/v1/agents/{mine['id']}/presence", json={"presence": "offline"})
    assert own.status_code == 200, own.text
    assert own.json()["presence"] == "offline"


@pytest.mark.parametrize("identifier", ["phone", "social"])
def test_a_customer_cannot_open_a_ticket_with_another_contacts_identifier(world, identifier):
    url, victim, me = world["url"], world["victim"], world["customer_email"]
    requester = {"email": me, "name": "Mallory"}
    requester.update({"phone": "+46707654321"} if identifier == "phone"
                     else {"social": {"platform": "mastodon", "handle": f"victor{world['tag']}"}})
    answer = world["as_customer"].post(f"{url}/api/v1/tickets", json=new_ticket(
        subject="Please reset my password", requester=requester))
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "customer_identifier_refused"
    assert victim["email"] not in answer.text and "Victor" not in answer.text
    assert world["admin"].get(f"{url}/api/v1/tickets", params={"requester": victim["email"]}).json()["items"] == []


def test_a_customers_channel_team_and_priority_are_ignored(world):
    url, me = world["url"], world["customer_email"]
    answer = world["as_customer"].post(f"{url}/api/v1/tickets", json=new_ticket(
        requester={"email": me}, channel="phone", team=world["beta"], priority="urgent"))
    assert answer.status_code == 201, answer.text
    ticket = answer.json()
    assert (ticket["channel"], ticket["priority"], ticket["team"]) == ("web", "normal", None)
    assert ticket["requester"]["email"] == me
    # without a requester the token's own address is used
    bare = new_ticket()
    del bare["requester"]
    answer = world["as_customer"].post(f"{url}/api/v1/tickets", json=bare)
    assert answer.status_code == 201 and answer.json()["requester"]["email"] == me


def test_the_web_form_holds_customers_to_the_same_rules(world):
    url, me = world["url"], world["customer_email"]
    form = {"subject": "Printer", "description": "It jams.", "requester": {"email": me, "phone": "+46707654321"}}
    answer = world["as_customer"].post(f"{url}/api/v1/intake/web-form", json=form)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "customer_identifier_refused"
    del form["requester"]["phone"]
    answer = world["as_customer"].post(f"{url}/api/v1/intake/web-form", json={**form, "team": world["beta"],
                                                                               "priority": "urgent"})
    assert answer.status_code == 201, answer.text
    ticket = world["admin"].get(f"{url}/api/v1/tickets/{answer.json()['ticket_number']}").json()
    assert (ticket["channel"], ticket["team"], ticket["priority"]) == ("web", None, "normal")
