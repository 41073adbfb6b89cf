"""Contacts with several identifiers, end to end: a contact created through the gateway with two email
addresses and a phone number; mail from the second address (a real Dovecot mailbox read by intake) and a
signed call record from the number both land on that contact. Every process is real (``tests/stack.py``).
"""
import json
import time
import uuid

import pytest

from helpdesk_gateway.api.intake import sign
from mail_servers import dovecot, mails  # noqa: F401 (dovecot: a fixture)
from stack import EventRecorder, Stack, create_token, database_url, new_ticket, wait_for

pytestmark = pytest.mark.e2e

PHONE_SECRET = "contacts-e2e-phone-secret"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def stack(request, tmp_path_factory, dovecot):
    mailbox = dovecot.mailbox()
    url, cleanup = database_url(request.param)
    stack = Stack(tmp_path_factory.mktemp(f"stack-contacts-{request.param}"), tickets_db_url=url, env={
        "HELPDESK_IMAP_URL": mailbox.url(team="support"), "HELPDESK_IMAP_POLL_INTERVAL": "0.2",
        "HELPDESK_WEBHOOK_SECRET_PHONE": PHONE_SECRET})
    try:
        stack.start()
        stack.mailbox = mailbox
        yield stack
    finally:
        stack.stop()
        cleanup()


def _tickets_from(api, url, address):
    answer = api.get(f"{url}/api/v1/tickets", params={"requester": address}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def test_mail_from_a_second_address_and_a_call_from_the_number_land_on_the_contact(stack):
    api, url, tag = stack.session(), stack.url, uuid.uuid4().hex[:8]
    home, work = f"eva-{tag}@example.se", f"Eva.Angstrom-{tag}@Work.example"
    created = api.post(f"{url}/api/v1/contacts", timeout=10, json={"name": "Eva Ångström", "identifiers": [
        {"kind": "email", "value": home}, {"kind": "email", "value": work},
        {"kind": "phone", "value": "+46 70 123 45 67"}]})
    assert created.status_code == 201, created.text
    eva = created.json()
    assert [(i["kind"], i["value"]) for i in eva["identifiers"]] == [
        ("email", home), ("email", work.lower()), ("phone", "+46701234567")]

    # mail from the second address, through the real mailbox
    stack.mailbox.deliver(mails.plain(f"Eva <{work}>", "VPN again", "It drops every 5 minutes."))
    (by_mail,) = wait_for(lambda: _tickets_from(api, url, work.lower()), timeout=30, what="the mailed ticket")
    assert by_mail["channel"] == "email"
    assert by_mail["requester"]["contact_id"] == eva["id"]
    assert by_mail["requester"]["email"] == work.lower()  # answered where she wrote from

    # a call record from her number, spelt the call centre's way
    body = json.dumps({"call_id": f"call-{tag}", "caller_number": "+46 70-123 45 67",
                       "duration_seconds": 95, "direction": "inbound", "notes": "VPN again, by phone"}).encode()
    timestamp = str(int(time.time()))
    call = api.post(f"{url}/api/v1/intake/webhooks/phone", data=body, timeout=10, headers={
        "Content-Type": "application/json", "X-Helpdesk-Timestamp": timestamp,
        "X-Helpdesk-Signature": sign(PHONE_SECRET, timestamp, body)})
    assert call.status_code in (200, 201), call.text
    by_phone = api.get(f"{url}/api/v1/tickets/{call.json()['ticket_number']}", timeout=10).json()
    assert by_phone["channel"] == "phone"
    assert by_phone["requester"]["contact_id"] == eva["id"]
    assert by_phone["requester"]["email"] == home  # her primary address, not a caller placeholder

    # she, as a customer, sees both tickets whichever of her addresses her token carries
    mine = stack.session(create_token(stack, "customer", email=home))
    numbers = {t["number"] for t in mine.get(f"{url}/api/v1/tickets", timeout=10).json()["items"]}
    assert numbers == {by_mail["number"], by_phone["number"]}

    # found by any identifier, in any spelling
    found = api.get(f"{url}/api/v1/contacts", params={"kind": "phone", "value": "+46701234567"}, timeout=10)
    assert [c["id"] for c in found.json()["items"]] == [eva["id"]]


def test_contacts_api_refuses_bad_input_and_customers(stack):
    api, url = stack.session(), stack.url
    bad = api.post(f"{url}/api/v1/contacts", timeout=10,
                   json={"identifiers": [{"kind": "phone", "value": "12"}]})
    assert bad.status_code == 422, bad.text
    (detail,) = bad.json()["error"]["details"]
    assert (detail["field"], detail["code"]) == ("identifiers.0.value", "invalid_value")
    outsider = stack.session(create_token(stack, "customer", email="mallory@example.com"))
    refused = outsider.get(f"{url}/api/v1/contacts", timeout=10)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "role_not_allowed"
    missing = api.get(f"{url}/api/v1/contacts/999999", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "contact_not_found"


def test_contact_changes_reach_the_bus_and_a_merge_moves_tickets(stack):
    api, url, tag = stack.session(), stack.url, uuid.uuid4().hex[:8]
    with EventRecorder(stack.amqp_uri) as events:
        kept = api.post(f"{url}/api/v1/contacts", timeout=10, json={
            "name": "Nils", "identifiers": [{"kind": "email", "value": f"nils-{tag}@example.se"}]}).json()
        ticket = api.post(f"{url}/api/v1/tickets", timeout=10,
                          json=new_ticket(requester={"email": f"n.berg-{tag}@work.example"})).json()
        other = ticket["requester"]["contact_id"]
        merged = api.post(f"{url}/api/v1/contacts/{kept['id']}/merge", json={"other": other}, timeout=10)
        assert merged.status_code == 200, merged.text
        (announced,) = events.wait("contact_merged")
        created = {e["data"]["contact"]["id"] for e in events.wait("contact_created", count=2)}
        moved = events.wait("ticket_updated", number=ticket["number"])
    assert created >= {kept["id"], other}
    assert announced["data"]["merged_contact_id"] == other
    assert announced["data"]["ticket_numbers"] == [ticket["number"]]
    assert moved[-1]["data"]["ticket"]["requester"]["contact_id"] == kept["id"]
    after = api.get(f"{url}/api/v1/tickets/{ticket['number']}", timeout=10).json()
    assert after["requester"]["contact_id"] == kept["id"]
