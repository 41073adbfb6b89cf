"""Email end to end through real processes: a real Dovecot mailbox (IMAP) in, a real aiosmtpd server (SMTP)
out, every service and the gateway started as processes (``tests/stack.py``), driven over HTTP.

The mail servers are the intake tests' own (``services/intake/tests/servers.py``, ``mails.py``), imported,
not copied. The stack is this module's own: the shared ``platform`` fixture polls no mailbox.
"""
import uuid

import pytest

from mail_servers import SmtpSink, dovecot, mails  # noqa: F401 (dovecot: a fixture)
from stack import Stack, database_url, wait_for

pytestmark = pytest.mark.e2e

SUPPORT = "support@helpdesk.test"


@pytest.fixture(scope="module")
def smtp_sink(tmp_path_factory):
    sink = SmtpSink(tmp_path_factory.mktemp("e2e-smtp")).start()
    yield sink
    sink.stop()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def mail_stack(request, tmp_path_factory, dovecot, smtp_sink):
    """Every process of the platform, with intake reading a fresh Dovecot mailbox and sending to the sink."""
    mailbox = dovecot.mailbox()
    url, cleanup = database_url(request.param)
    stack = Stack(tmp_path_factory.mktemp(f"stack-email-{request.param}"), tickets_db_url=url, env={
        "HELPDESK_IMAP_URL": mailbox.url(team="support"),
        "HELPDESK_SMTP_URL": smtp_sink.url,
        "HELPDESK_SUPPORT_ADDRESS": SUPPORT,
        "HELPDESK_IMAP_POLL_INTERVAL": "0.2",
        "HELPDESK_MAIL_POLL_INTERVAL": "0.2",
        "HELPDESK_MAIL_BACKOFF": "0.2,0.5,1",
    })
    try:
        stack.start()
        stack.mailbox = mailbox
        yield stack
    finally:
        stack.stop()
        cleanup()


@pytest.fixture
def mailbox(mail_stack):
    return mail_stack.mailbox


def test_mail_in_ack_out_agent_reply_out_customer_answer_back_on_the_ticket(mail_stack, mailbox, smtp_sink):
    api, url = mail_stack.session(), mail_stack.url
    customer = f"eva-{uuid.uuid4().hex[:8]}@example.se"
    first_id = mails.msgid()

    def tickets_of_customer():
        answer = api.get(f"{url}/api/v1/tickets", params={"requester": customer}, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()["items"]

    # 1. the customer's mail, dropped into the Maildir, becomes a ticket visible through the gateway
    mailbox.deliver(mails.plain(f"=?UTF-8?Q?Eva_=C3=85ngstr=C3=B6m?= <{customer}>", "Skrivaren är trasig",
                                "The printer on floor 3 prints blank pages.", message_id=first_id))
    (ticket,) = wait_for(tickets_of_customer, timeout=30, what=f"a ticket for {customer} in the gateway")
    number = ticket["number"]
    assert (ticket["subject"], ticket["description"], ticket["channel"], ticket["team"]) == (
        "Skrivaren är trasig", "The printer on floor 3 prints blank pages.", "email", "support")
    assert {k: ticket["requester"][k] for k in ("email", "name")} == {"email": customer, "name": "Eva Ångström"}
    wait_for(lambda: mailbox.counts() == (1, 0), what="the mail to be marked seen on the IMAP server")

    # 2. the customer receives the acknowledgement, answering their mail in thread
    (ack,) = smtp_sink.wait_for(customer, timeout=30)
    assert ack.envelope["rcpt_tos"] == [customer] and ack["From"] == f"Helpdesk <{SUPPORT}>"
    assert number in ack["Subject"] and number in ack.get_content()
    assert ack["In-Reply-To"] == f"<{first_id}>" and ack["References"].split() == [f"<{first_id}>"]
    assert ack["Auto-Submitted"] == "auto-replied"

    # 3. the agent's public reply, posted through the gateway, reaches the customer's mailbox in thread
    posted = api.post(f"{url}/api/v1/tickets/{number}/messages", timeout=10,
                      json={"body": "We replaced the toner cartridge; please try again.", "visibility": "public"})
    assert posted.status_code == 201, posted.text
    _, reply = smtp_sink.wait_for(customer, count=2, timeout=30)
    assert reply["Subject"] == f"Re: [{number}] Skrivaren är trasig"
    assert "We replaced the toner cartridge; please try again." in reply.get_content()
    assert reply["Message-ID"].startswith(f"<{number}.") and reply["Message-ID"] != ack["Message-ID"]
    assert reply["In-Reply-To"] == f"<{first_id}>"
    assert reply["References"].split() == [f"<{first_id}>", ack["Message-ID"]]
    assert reply["X-Helpdesk-Ticket"] == number and "Auto-Submitted" not in reply

    # 4. the customer answers that reply. The subject no longer carries the number (the customer rewrote
    # it), so only In-Reply-To/References (our reply's Message-ID) can tie it to the ticket.
    answer_id = mails.msgid()
    mailbox.deliver(mails.plain(f"Eva <{customer}>", "Thanks!", "It prints again, thank you.\n\n"
                                f"On Tue, Helpdesk wrote:\n> We replaced the toner cartridge; please try again.\n",
                                message_id=answer_id, extra={
                                    "In-Reply-To": reply["Message-ID"],
                                    "References": f"{reply['References']} {reply['Message-ID']}",
                                    **mails.passed(customer)}))

    def conversation():
        answer = api.get(f"{url}/api/v1/tickets/{number}/messages", timeout=10)
        assert answer.status_code == 200, answer.text
        messages = answer.json()
        return len(messages) >= 2 and messages

    messages = wait_for(conversation, timeout=30, what=f"the customer's answer on {number}")
    assert [(m["body"], m["visibility"], m["author"], m["author_role"]) for m in messages] == [
        ("We replaced the toner cartridge; please try again.", "public", messages[0]["author"], "admin"),
        ("It prints again, thank you.", "public", customer, "customer")]
    wait_for(lambda: mailbox.counts() == (2, 0), what="the answer to be marked seen on the IMAP server")
    assert [t["number"] for t in tickets_of_customer()] == [number]  # no second ticket for the answer
