"""Customer organisations end to end, through the gateway with every process real (``tests/stack.py``):
an admin makes two organisations over the REST API, one sharing; contacts join by their address's domain;
two members of the sharing one read each other's tickets with their customer tokens (and change only their
own), a member of the other reads none of theirs; agents filter the list by organisation; the events go
out. Bad input: a taken domain (409), a malformed one (422), an unknown organisation (404)."""
import uuid

import pytest

from stack import EventRecorder, create_token, new_ticket, stack_fixture

pytestmark = pytest.mark.e2e


stack = stack_fixture("organisations")


def _numbers(session, url, **params):
    answer = session.get(f"{url}/api/v1/tickets", params=params, timeout=10)
    assert answer.status_code == 200, answer.text
    return sorted(t["number"] for t in answer.json()["items"])


def test_members_of_a_sharing_organisation_see_each_others_tickets_and_others_see_none(stack):
    api, url, tag = stack.session(), stack.url, uuid.uuid4().hex[:8]
    acme, globex = f"acme-{tag}.example", f"globex-{tag}.example"
    with EventRecorder(stack.amqp_uri) as events:
        shared = api.post(f"{url}/api/v1/organisations", timeout=10,
                          json={"name": "Acme", "domains": [acme.upper()], "shared": True})
        assert shared.status_code == 201, shared.text
        alone = api.post(f"{url}/api/v1/organisations", timeout=10,
                         json={"name": "Globex", "domains": [globex], "shared": False})
        assert alone.status_code == 201, alone.text
        assert shared.json()["domains"] == [acme]
        events.wait("organisation_created", count=2)
    ann, bob, eve = f"ann@{acme}", f"bob@{acme}", f"eve@{globex}"
    tickets = {who: api.post(f"{url}/api/v1/tickets", json=new_ticket(requester={"email": who}), timeout=10).json()
               for who in (ann, bob, eve)}
    assert tickets[ann]["requester"]["organisation"] == {"id": shared.json()["id"], "name": "Acme", "shared": True}
    tokens = {who: stack.session(create_token(stack, "customer", email=who)) for who in (ann, bob, eve)}

    both = sorted([tickets[ann]["number"], tickets[bob]["number"]])
    assert _numbers(tokens[ann], url) == both and _numbers(tokens[bob], url) == both
    assert _numbers(tokens[eve], url) == [tickets[eve]["number"]]
    bobs = tickets[bob]["number"]
    assert tokens[ann].get(f"{url}/api/v1/tickets/{bobs}", timeout=10).status_code == 200
    assert tokens[eve].get(f"{url}/api/v1/tickets/{bobs}", timeout=10).status_code == 404
    # reading is shared, changing is not: Ann cannot write on Bob's ticket
    reply = tokens[ann].post(f"{url}/api/v1/tickets/{bobs}/messages", json={"body": "me too"}, timeout=10)
    assert reply.status_code == 404, reply.text

    # Globex starts sharing: Eve still sees only hers (she is its only member)
    changed = api.patch(f"{url}/api/v1/organisations/{alone.json()['id']}", json={"shared": True}, timeout=10)
    assert changed.status_code == 200 and changed.json()["shared"] is True and changed.json()["members"] == 1
    assert _numbers(tokens[eve], url) == [tickets[eve]["number"]]
    # an admin moves Eve into Acme: now she reads Acme's tickets, and Acme's members read hers
    moved = api.put(f"{url}/api/v1/contacts/{tickets[eve]['requester']['contact_id']}/organisation",
                    json={"organisation_id": shared.json()["id"]}, timeout=10)
    assert moved.status_code == 200 and moved.json()["organisation_id"] == shared.json()["id"]
    assert len(_numbers(tokens[eve], url)) == 3 and len(_numbers(tokens[ann], url)) == 3

    assert _numbers(api, url, organisation=shared.json()["id"]) == sorted(t["number"] for t in tickets.values())
    listed = api.get(f"{url}/api/v1/organisations", params={"domain": globex}, timeout=10)
    assert [o["name"] for o in listed.json()["items"]] == ["Globex"]


def test_bad_organisations_are_refused_with_clear_codes(stack):
    api, url, tag = stack.session(), stack.url, uuid.uuid4().hex[:8]
    first = api.post(f"{url}/api/v1/organisations", json={"name": "Initech", "domains": [f"initech-{tag}.example"]},
                     timeout=10)
    assert first.status_code == 201
    taken = api.post(f"{url}/api/v1/organisations", json={"name": "Copy", "domains": [f"initech-{tag}.example"]},
                     timeout=10)
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "domain_taken"
    malformed = api.post(f"{url}/api/v1/organisations", json={"name": "Bad", "domains": ["not a domain"]}, timeout=10)
    assert malformed.status_code == 422 and malformed.json()["error"]["details"][0]["field"] == "domains.0"
    missing = api.get(f"{url}/api/v1/organisations/999999", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "organisation_not_found"
    unknown = api.put(f"{url}/api/v1/contacts/999999/organisation", json={"organisation_id": None}, timeout=10)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "contact_not_found"
