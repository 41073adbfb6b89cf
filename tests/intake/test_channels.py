"""The web form and the signed phone and social webhooks, through the gateway's intake blueprint (a Flask
test client on the real app) to the real intake and tickets services."""
import base64
import json
import time
import uuid

import pytest
from sqlalchemy import select

from viewers import ADMIN
from helpdesk_common.testing import migrated_test_database
from helpdesk_gateway.api import intake as intake_api
from helpdesk_intake.models import Attachment

TOKEN = "hd_test_intake_admin"
SECRET = "phone-shared-secret"


@pytest.fixture
def gateway(intake_service, intake_config, tmp_path, monkeypatch):
    from helpdesk_gateway.app import create_app
    from helpdesk_gateway.settings import Settings
    from gateway_migrate import migrate

    monkeypatch.setenv("HELPDESK_WEBHOOK_SECRET_PHONE", SECRET)
    monkeypatch.setenv("HELPDESK_WEBHOOK_SECRET_SOCIAL", SECRET + "-social")
    # a copy of a database migrated once (by the command) for the whole run
    with migrated_test_database("gateway", tmp_path, migrate) as url:
        app = create_app(Settings(amqp_uri=intake_config["AMQP_URI"], database_url=url, bootstrap_token=TOKEN,
                                  max_body_bytes=1_048_576, rpc_timeout=10, rpc_pool_size=4, token_cache_seconds=1))
        client = app.test_client()
        yield client
        app.extensions["helpdesk.rpc"].close()


def auth(**headers):
    return {"Authorization": f"Bearer {TOKEN}", **headers}


def signed(body, secret=SECRET, timestamp=None):
    raw = json.dumps(body).encode()
    timestamp = str(int(timestamp if timestamp is not None else time.time()))
    return raw, auth(**{"Content-Type": "application/json", "X-Helpdesk-Timestamp": timestamp,
                        "X-Helpdesk-Signature": intake_api.sign(secret, timestamp, raw)})


def test_signature_checks():
    body = b'{"a": 1}'
    good = intake_api.sign("s3cret", "1000", body)
    intake_api.verify_signature("s3cret", "1000", good, body, now=1100)
    for secret, timestamp, signature, now, code in [
        ("other", "1000", good, 1100, "invalid_signature"),
        ("s3cret", "1000", good, 2000, "stale_signature"),
        ("s3cret", "1001", good, 1100, "invalid_signature"),
        ("s3cret", None, good, 1100, "missing_signature"),
    ]:
        with pytest.raises(intake_api.InvalidSignature) as caught:
            intake_api.verify_signature(secret, timestamp, signature, body, now=now)
        assert caught.value.code == code


def test_web_form_with_attachment_is_a_ticket_once_and_rate_limited(gateway, tickets_rpc, intake_sessions):
    email = f"web-{uuid.uuid4().hex[:6]}@example.com"
    form = {"subject": "Cannot log in", "description": "Password reset mail never arrives.",
            "requester": {"email": email, "name": "Wim"}, "language": "nl", "submission_id": "form-1",
            "attachments": [{"filename": "screen.png", "content_type": "image/png",
                             "content_base64": base64.b64encode(b"\x89PNG screen").decode()}]}
    first = gateway.post("/api/v1/intake/web-form", json=form, headers=auth())
    assert first.status_code == 201, first.get_json()
    number = first.get_json()["ticket_number"]
    again = gateway.post("/api/v1/intake/web-form", json=form, headers=auth())
    assert again.status_code == 200 and again.get_json() == {"ticket_number": number, "created": False,
                                                             "duplicate": True}
    ticket = tickets_rpc.get_ticket(number, ADMIN)
    assert ticket["channel"] == "web" and ticket["language"] == "nl" and "screen.png" in ticket["description"]
    listed = gateway.get(f"/api/v1/tickets/{number}/attachments", headers=auth()).get_json()
    assert [(a["filename"], a["size"]) for a in listed] == [("screen.png", 11)]
    with intake_sessions() as session:
        assert session.scalar(select(Attachment.sha256).where(Attachment.ticket_number == number))
    for n in range(4):  # 5 per hour per address by default: the first counted once, then four more
        assert gateway.post("/api/v1/intake/web-form", json={**form, "submission_id": f"f{n}", "attachments": []},
                            headers=auth()).status_code == 201
    limited = gateway.post("/api/v1/intake/web-form", json={**form, "submission_id": "f9", "attachments": []},
                           headers=auth())
    assert limited.status_code == 429 and limited.get_json()["error"]["code"] == "rate_limited"
    bad = gateway.post("/api/v1/intake/web-form", json={**form, "subject": ""}, headers=auth())
    assert bad.status_code == 422


def test_phone_webhook_is_verified_and_deduplicated(gateway, tickets_rpc):
    call = {"call_id": f"call-{uuid.uuid4().hex[:6]}", "caller_number": "+46 70 123 45 67", "caller_name": "Åsa",
            "agent": "agent-3", "duration_seconds": 125, "notes": "Printer jams on tray 2.",
            "recording_url": "https://pbx.example/rec/1"}
    raw, headers = signed(call)
    first = gateway.post("/api/v1/intake/webhooks/phone", data=raw, headers=headers)
    assert first.status_code == 201, first.get_json()
    number = first.get_json()["ticket_number"]
    ticket = tickets_rpc.get_ticket(number, ADMIN)
    assert ticket["channel"] == "phone" and "Duration: 2:05" in ticket["description"]
    assert "Printer jams on tray 2." in ticket["description"] and ticket["requester"]["name"] == "Åsa"
    assert gateway.post("/api/v1/intake/webhooks/phone", data=raw, headers=headers).get_json()["duplicate"] is True

    raw, headers = signed(call, secret="wrong")
    forged = gateway.post("/api/v1/intake/webhooks/phone", data=raw, headers=headers)
    assert forged.status_code == 401 and forged.get_json()["error"]["code"] == "invalid_signature"
    raw, headers = signed(call, timestamp=time.time() - 3600)
    assert gateway.post("/api/v1/intake/webhooks/phone", data=raw,
                        headers=headers).get_json()["error"]["code"] == "stale_signature"


def test_social_messages_in_one_thread_share_a_ticket(gateway, tickets_rpc):
    thread = f"t-{uuid.uuid4().hex[:6]}"
    base = {"platform": "mastodon", "thread_id": thread, "handle": "@eva@social.example", "name": "Eva"}
    raw, headers = signed({**base, "message_id": "m1", "text": "Your app crashes on start."}, SECRET + "-social")
    first = gateway.post("/api/v1/intake/webhooks/social", data=raw, headers=headers)
    assert first.status_code == 201, first.get_json()
    number = first.get_json()["ticket_number"]
    raw, headers = signed({**base, "message_id": "m2", "text": "Version 2.3 on Android."}, SECRET + "-social")
    second = gateway.post("/api/v1/intake/webhooks/social", data=raw, headers=headers)
    assert second.status_code == 200 and second.get_json()["ticket_number"] == number
    assert [m["body"] for m in tickets_rpc.list_messages(number, ADMIN)] == ["Version 2.3 on Android."]
    assert tickets_rpc.get_ticket(number, ADMIN)["channel"] == "social"


def test_operator_views(gateway, intake_config):
    channels = gateway.get("/api/v1/intake/channels", headers=auth()).get_json()
    assert channels["mailboxes"][0]["team"] == "support" and "secret" not in json.dumps(channels)
    assert gateway.get("/api/v1/intake/quarantine", headers=auth()).get_json() == []
    assert gateway.get("/api/v1/intake/outgoing?status=failed", headers=auth()).get_json() == []
    assert gateway.post("/api/v1/intake/quarantine/999/retry", headers=auth()).status_code == 404


def test_operators_read_download_retry_and_discard_quarantined_mail_through_the_gateway(gateway, mailbox, find_tickets):
    """Item 8: the quarantine through /api/v1/intake/quarantine/... (admins only)."""
    import mails
    from servers import wait_for

    broken = b"Subject: no sender here\r\nMessage-ID: <broken-gw@x>\r\n\r\nWho sent this?\r\n"
    customer = f"gw-{uuid.uuid4().hex[:8]}@example.com"
    mailbox.deliver(broken)
    mailbox.deliver(mails.plain(customer, "First", "Opening one."))
    wait_for(lambda: find_tickets(customer), what="the ordinary ticket")
    held = wait_for(lambda: len(gateway.get("/api/v1/intake/quarantine?status=held", headers=auth()).get_json()) >= 1
                    and gateway.get("/api/v1/intake/quarantine?status=held", headers=auth()).get_json(),
                    what="the broken mail quarantined")
    (row,) = [q for q in held if q["code"] == "unparseable"]

    detail = gateway.get(f"/api/v1/intake/quarantine/{row['id']}", headers=auth())
    assert detail.status_code == 200, detail.get_data(as_text=True)
    body = detail.get_json()
    assert ["Subject", "no sender here"] in body["headers"] and "no usable sender" in body["reason"]
    assert body["parse_error"].startswith("no usable sender address") and body["text"] is None
    raw = gateway.get(f"/api/v1/intake/quarantine/{row['id']}/raw", headers=auth()).get_json()
    assert base64.b64decode(raw["data"]) == broken and raw["filename"].endswith(".eml")

    retried = gateway.post(f"/api/v1/intake/quarantine/{row['id']}/retry", headers=auth())  # no body: fine
    assert retried.status_code == 200 and retried.get_json()["status"] == "held"
    assert gateway.post(f"/api/v1/intake/quarantine/{row['id']}/retry", json={"trust": True},
                        headers=auth()).status_code == 422
    discarded = gateway.post(f"/api/v1/intake/quarantine/{row['id']}/discard", headers=auth()).get_json()
    assert discarded["status"] == "discarded" and discarded["decided_by"] and discarded["decided_at"]
    again = gateway.post(f"/api/v1/intake/quarantine/{row['id']}/retry", json={}, headers=auth())
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "quarantine_discarded"
    listed = gateway.get("/api/v1/intake/quarantine?status=discarded", headers=auth()).get_json()
    assert [q["id"] for q in listed] == [row["id"]]
    assert gateway.get("/api/v1/intake/quarantine/999999", headers=auth()).status_code == 404


def customer_token(gateway, email):
    made = gateway.post("/api/v1/tokens", json={"name": f"customer {email}", "role": "customer", "email": email},
                        headers=auth())
    assert made.status_code == 201, made.get_json()
    return {"Authorization": f"Bearer {made.get_json()['token']}"}


def test_a_customers_reply_with_files_is_on_their_ticket_once_and_nowhere_else(gateway, tickets_rpc, intake_sessions):
    """The portal's reply form through ``POST /tickets/{n}/replies``: the message on the ticket as the customer
    with its files listed, the files kept beside the request's own; a repeat is one message; someone else's
    ticket, an agent, too much or bad base64 leave nothing behind."""
    email = f"reply-{uuid.uuid4().hex[:6]}@example.com"
    form = {"subject": "Printer", "description": "It jams.", "requester": {"email": email}}
    number = gateway.post("/api/v1/intake/web-form", json=form, headers=auth()).get_json()["ticket_number"]
    log = base64.b64encode(b"line 1\nline 2\n").decode()
    reply = {"body": "Here is the log.", "reply_id": "reply-1",
             "attachments": [{"filename": "printer.log", "content_type": "text/plain", "content_base64": log}]}
    me = customer_token(gateway, email)
    first = gateway.post(f"/api/v1/tickets/{number}/replies", json=reply, headers=me)
    assert first.status_code == 201, first.get_json()
    assert first.get_json() == {"ticket_number": number, "created": False, "duplicate": False}
    again = gateway.post(f"/api/v1/tickets/{number}/replies", json=reply, headers=me)
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    mine = [m for m in tickets_rpc.list_messages(number, ADMIN) if m["author_role"] == "customer"]
    assert len(mine) == 1 and mine[0]["author"] == email and mine[0]["visibility"] == "public"
    assert mine[0]["body"].startswith("Here is the log.") and "printer.log (text/plain, 14 bytes)" in mine[0]["body"]
    listed = gateway.get(f"/api/v1/tickets/{number}/attachments", headers=me).get_json()  # the customer's own view
    assert [(a["filename"], a["size"]) for a in listed] == [("printer.log", 14)]
    download = gateway.get(f"/api/v1/tickets/{number}/attachments/{listed[0]['id']}", headers=auth())
    assert download.data == b"line 1\nline 2\n"  # and the agents' (the admin's) download

    def refused(path_number, body, headers, status, code):
        answer = gateway.post(f"/api/v1/tickets/{path_number}/replies", json=body, headers=headers)
        assert answer.status_code == status and answer.get_json()["error"]["code"] == code, answer.get_json()

    other = gateway.post("/api/v1/intake/web-form", json={**form, "requester": {"email": "someone@example.org"}},
                         headers=auth()).get_json()["ticket_number"]
    refused(other, {**reply, "reply_id": "reply-2"}, me, 404, "ticket_not_found")  # a guessed number
    refused(number, {**reply, "reply_id": "reply-3"}, auth(), 403, "role_not_allowed")  # customers' route
    refused(number, {**reply, "reply_id": "reply-4", "attachments": [{**reply["attachments"][0],
                                                                      "content_base64": "not base64!"}]},
            me, 422, "validation_failed")
    refused(number, {"body": "no files", "attachments": []}, me, 422, "validation_failed")
    assert len(tickets_rpc.list_messages(number, ADMIN)) == 1 and tickets_rpc.list_messages(other, ADMIN) == []
    with intake_sessions() as session:
        assert session.scalars(select(Attachment.filename).where(Attachment.ticket_number.in_([number, other]))
                               ).all() == ["printer.log"]


def test_a_reply_whose_files_are_over_the_limit_is_refused_whole(gateway, tickets_rpc, intake_sessions):
    email = f"big-{uuid.uuid4().hex[:6]}@example.com"
    number = gateway.post("/api/v1/intake/web-form", json={
        "subject": "Scan", "description": "Attached.", "requester": {"email": email}},
        headers=auth()).get_json()["ticket_number"]
    big = base64.b64encode(b"%PDF-" + b"x" * (10 * 1024 * 1024)).decode()  # over intake's 10 MB together
    answer = gateway.post(f"/api/v1/tickets/{number}/replies", headers=customer_token(gateway, email), json={
        "body": "The scan.", "attachments": [{"filename": "scan.pdf", "content_type": "application/pdf",
                                             "content_base64": big}]})
    assert answer.status_code == 413 and answer.get_json()["error"]["code"] == "payload_too_large", answer.get_json()
    assert tickets_rpc.list_messages(number, ADMIN) == []
    with intake_sessions() as session:
        assert session.scalars(select(Attachment.id).where(Attachment.ticket_number == number)).all() == []
