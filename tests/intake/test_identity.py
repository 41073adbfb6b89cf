"""Mail identity through the real things (Dovecot, tickets and intake on RabbitMQ): the sender is From; a
mail goes onto a customer's ticket only when our receiving server vouched for its From domain."""
import uuid

import mails
from viewers import ADMIN
from servers import wait_for


def address(name):
    return f"{name}-{uuid.uuid4().hex[:8]}@example.com"


def opened_by_mail(mailbox, wait_tickets, customer, subject):
    mailbox.deliver(mails.plain(customer, subject, "Where is my invoice?"))
    (ticket,) = wait_tickets(customer)
    return ticket


def quarantined(intake_rpc, code):
    return [q for q in intake_rpc.list_quarantine({"status": "held"}) if q["code"] == code]


def test_a_reply_to_claiming_a_customer_does_not_post_as_them(intake_service, intake_rpc, tickets_rpc, mailbox,
                                                              wait_tickets):
    """A single Reply-To used to replace the sender: a mail from any domain naming the customer there was
    added to the customer's ticket as the customer (and reopened it). Ticket numbers are sequential."""
    customer = address("ann")
    ticket = opened_by_mail(mailbox, wait_tickets, customer, "Invoice missing")
    number = ticket["number"]
    tickets_rpc.update_ticket(number, {"status": "pending"}, ADMIN)
    mailbox.deliver(mails.plain("Mallory <mallory@evil.example>", f"Re: [{number}] Invoice missing",
                                "Please send the invoice to my new address instead.",
                                extra={"Reply-To": f"Ann <{customer}>"}))
    (held,) = wait_for(lambda: quarantined(intake_rpc, "unauthenticated"), what="the forged reply quarantined")
    assert held["sender"] == "mallory@evil.example" and number in held["reason"]
    wait_for(lambda: mailbox.counts() == (2, 0), what="both marked seen")
    assert tickets_rpc.list_messages(number, ADMIN) == []
    assert tickets_rpc.get_ticket(number, ADMIN)["status"] == "pending"  # not reopened

    # an operator who knows better vouches for the sender: it goes onto the ticket, as who wrote it
    retried = intake_rpc.retry_quarantined(held["id"], {"trust_sender": True}, ADMIN)
    assert retried["status"] == "resolved" and retried["ticket_number"] == number
    (message,) = tickets_rpc.list_messages(number, ADMIN)
    assert message["body"].startswith("From: Mallory <mallory@evil.example>") and message["author"] != customer


def test_a_forged_from_needs_our_servers_word_to_post_on_the_ticket(intake_service, intake_rpc, tickets_rpc, mailbox,
                                                                    wait_tickets):
    customer = address("bo")
    number = opened_by_mail(mailbox, wait_tickets, customer, "Laptop broken")["number"]
    # no Authentication-Results; one the sender wrote under ours claiming a pass; another server's pass
    mailbox.deliver(mails.plain(customer, f"Re: [{number}] Laptop broken", "Forged 1"))
    forged = (f"Authentication-Results: {mails.AUTHSERV_ID}; dmarc=fail header.from=example.com\r\n".encode()
              + mails.plain(customer, f"Re: [{number}] Laptop broken", "Forged 2", extra=mails.passed(customer)))
    mailbox.deliver(forged)
    mailbox.deliver(mails.plain(customer, f"Re: [{number}] Laptop broken", "Forged 3",
                                extra=mails.passed(customer, server="mx.attacker.example")))
    # the genuine reply, vouched for by our server
    mailbox.deliver(mails.plain(customer, f"Re: [{number}] Laptop broken", "Genuine", extra=mails.passed(customer)))
    messages = wait_for(lambda: tickets_rpc.list_messages(number, ADMIN), what="the genuine reply")
    wait_for(lambda: len(quarantined(intake_rpc, "unauthenticated")) == 3, what="three forged replies quarantined")
    assert [(m["body"], m["author"]) for m in messages] == [("Genuine", customer)]
    assert len(wait_tickets(customer)) == 1  # no new tickets either


def test_answers_go_to_reply_to_only_for_a_vouched_sender(intake_service, tickets_rpc, mailbox, smtp_sink,
                                                          wait_tickets):
    sender, assistant, victim = address("boss"), address("assistant"), address("victim")
    mailbox.deliver(mails.plain(sender, "Projector", "It flickers.",
                                extra={"Reply-To": assistant, **mails.passed(sender)}))
    forger = "forger@evil.example"
    mailbox.deliver(mails.plain(forger, "Spam", "Buy now", extra={"Reply-To": victim}))
    (ticket,) = wait_tickets(sender)
    assert ticket["requester"]["email"] == sender  # who wrote it; Reply-To is only where answers go
    (ack,) = smtp_sink.wait_for(assistant)
    assert "Projector" in ack["Subject"]
    smtp_sink.wait_for(forger)  # an unvouched sender's Reply-To is ignored: its acknowledgement goes to From
    # an agent's answer follows the customer's latest mail's Reply-To too
    tickets_rpc.add_message(ticket["number"], {"body": "A new lamp is on its way.", "visibility": "public"},
                            {"actor": "agent-7", "role": "agent"})
    ack, reply = smtp_sink.wait_for(assistant, 2)
    assert "A new lamp is on its way." in reply.get_content()
    assert smtp_sink.messages(victim) == [] and smtp_sink.messages(sender) == []
