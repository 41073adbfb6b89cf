"""A contact's personal data on the whole platform (issue 17, point 9): the export holds each service's part;
after the erasure no service's database or answer holds the person's name, address, number or texts,
the reports count the same, and a repeated erasure changes nothing. Every process on loopback, on SQLite
and on PostgreSQL."""
import base64
import json
import os
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect, text

from helpdesk_common.adapters.database import engine_for
from stack import create_token, stack_fixture, wait_for

pytestmark = pytest.mark.e2e


stack = stack_fixture("personal-data")


def _databases(stack):
    return {"tickets": stack.tickets_db_url, "gateway": stack.gateway_db_url, **stack.service_db_urls}


def _readable(value):
    """A column's value as text a needle can be found in (bytea arrives as a memoryview on PostgreSQL)."""
    return bytes(value).decode("latin-1") if isinstance(value, (bytes, memoryview)) else value


def traces(stack, needles):
    """``[(database, table, needle)]`` for each needle found in any text of any table of any service's
    database. The tickets outbox's contact_erased event names what to erase (relayed, then deleted after
    the relay's retention): not counted."""
    found = []
    for name, url in _databases(stack).items():
        engine = engine_for(url)
        try:
            with engine.connect() as connection:
                for table in inspect(connection).get_table_names():
                    for row in connection.execute(text(f'SELECT * FROM "{table}"')).mappings():
                        if table == "outbox" and row.get("event_type") == "contact_erased":
                            continue
                        blob = json.dumps({k: _readable(v) for k, v in row.items()}, default=str, ensure_ascii=False)
                        found += [(name, table, needle) for needle in needles if needle in blob]
        finally:
            engine.dispose()
    return sorted(set(found))


def _period():
    now = datetime.now(timezone.utc)
    return {"from": (now - timedelta(days=1)).date().isoformat(), "to": (now + timedelta(days=1)).date().isoformat()}


def test_export_gathers_every_service_and_erasure_leaves_only_the_counts(stack):
    admin, tag = stack.session(), uuid.uuid4().hex[:8]
    email, name, phone = f"eva-{tag}@example.se", f"Eva Ångström {tag}", "+46701234567"
    said, replied, chatted = f"Still broken {tag}", f"Hello Eva {tag}", f"Are you there {tag}"
    payslip = f"salary {tag}".encode()
    form = {"subject": f"VPN drops {tag}", "description": f"Since Monday {tag}",
            "requester": {"email": email, "name": name, "phone": phone},
            "attachments": [{"filename": f"payslip-{tag}.txt", "content_type": "text/plain",
                             "content_base64": base64.b64encode(payslip).decode()}]}
    answer = admin.post(f"{stack.url}/api/v1/intake/web-form", json=form, timeout=15)
    assert answer.status_code == 201, answer.text
    number = answer.json()["ticket_number"]
    ticket = admin.get(f"{stack.url}/api/v1/tickets/{number}", timeout=10).json()
    contact_id = ticket["requester"]["contact_id"]
    customer = stack.session(create_token(stack, "customer", email=email))
    assert customer.post(f"{stack.url}/api/v1/tickets/{number}/messages", json={"body": said},
                         timeout=10).status_code == 201
    assert customer.post(f"{stack.url}/api/v1/chats", json={"message": chatted}, timeout=10).status_code == 201
    assert admin.post(f"{stack.url}/api/v1/tickets/{number}/messages", json={"body": replied, "visibility": "public"},
                      timeout=10).status_code == 201
    assert admin.patch(f"{stack.url}/api/v1/tickets/{number}", json={"status": "resolved"},
                       timeout=10).status_code == 200

    def exported():
        answer = admin.get(f"{stack.url}/api/v1/contacts/{contact_id}/personal-data", timeout=15)
        assert answer.status_code == 200, answer.text
        parts = answer.json()["services"]
        ready = parts["surveys"]["csat"] and parts["analytics"]["ticket_facts"] and parts["intake"]["mail_sent"]
        return parts if ready else None

    parts = wait_for(exported, timeout=30, what="every service's part of the export")
    assert parts["tickets"]["contact"]["name"] == name
    assert [m["body"] for m in parts["tickets"]["tickets"][0]["messages"]] == [said, replied]
    (attachment,) = parts["intake"]["attachments"]
    assert attachment["filename"] == f"payslip-{tag}.txt"
    assert admin.get(f"{stack.url}{attachment['download']}", timeout=10).content == payslip
    assert parts["intake"]["chats"][0]["entries"][0]["body"] == chatted
    assert parts["intake"]["messages"][0]["ticket_number"] == number and parts["intake"]["web_forms"]
    assert parts["surveys"]["csat"][0]["ticket_number"] == number
    assert parts["analytics"]["ticket_facts"][0]["number"] == number
    assert parts["gateway"]["customer_tokens"][0]["email"] == email
    needles = [email, name, phone, said, replied, chatted, f"VPN drops {tag}", f"Since Monday {tag}"]
    assert {database for database, _, _ in traces(stack, needles)} >= {"tickets", "intake", "surveys", "gateway"}
    attachments = os.path.join(stack.workdir, "attachments")
    assert any(payslip == open(os.path.join(folder, f), "rb").read()
               for folder, _, files in os.walk(attachments) for f in files)

    def volume():
        answer = admin.get(f"{stack.url}/api/v1/reports/volume", params={**_period(), "group_by": "channel"}, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()["rows"]

    counted = volume()
    agent = stack.session(create_token(stack, "agent", email=f"al-{tag}@example.com"))
    refused = agent.post(f"{stack.url}/api/v1/contacts/{contact_id}/erasure", timeout=10)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "role_not_allowed"

    erased = admin.post(f"{stack.url}/api/v1/contacts/{contact_id}/erasure", timeout=15)
    assert erased.status_code == 200, erased.text
    assert erased.json()["ticket_numbers"] == [number] and not erased.json()["already_erased"]
    wait_for(lambda: not traces(stack, needles), timeout=30, what="every service to erase its part")
    assert not any(payslip == open(os.path.join(folder, f), "rb").read()
                   for folder, _, files in os.walk(attachments) for f in files)

    # the API answers nothing of the person either
    shown = admin.get(f"{stack.url}/api/v1/tickets/{number}", timeout=10).json()
    assert (shown["requester"]["email"], shown["requester"]["name"], shown["status"]) == ("", None, "resolved")
    messages = admin.get(f"{stack.url}/api/v1/tickets/{number}/messages", timeout=10).json()
    again = admin.get(f"{stack.url}/api/v1/contacts/{contact_id}/personal-data", timeout=15).json()
    contact = admin.get(f"{stack.url}/api/v1/contacts/{contact_id}", timeout=10).json()
    answers = json.dumps([shown, messages, again, contact], ensure_ascii=False)
    assert not [needle for needle in needles if needle in answers]
    assert again["erased_at"] and contact["erased_at"] and contact["identifiers"] == []
    assert customer.get(f"{stack.url}/api/v1/tickets", timeout=10).status_code == 401  # its token was revoked
    assert volume() == counted  # the reports count the same

    repeated = admin.post(f"{stack.url}/api/v1/contacts/{contact_id}/erasure", timeout=15)
    assert repeated.status_code == 200 and repeated.json()["already_erased"] is True
    audit = admin.get(f"{stack.url}/api/v1/audit", params={"limit": 10}, timeout=10).json()
    actions = [entry["action"] for entry in (audit["items"] if isinstance(audit, dict) else audit)]
    assert "POST /api/v1/contacts/<int:contact_id>/erasure" in actions
    assert "GET /api/v1/contacts/<int:contact_id>/personal-data" in actions


def test_the_erasure_of_a_contact_that_does_not_exist_is_a_404(stack):
    answer = stack.session().post(f"{stack.url}/api/v1/contacts/99999999/erasure", timeout=10)
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "contact_not_found"
