"""A contact's personal data across the platform: the export gathers every service's part, the erasure
starts at the owner of contacts.

- **Export** (``GET /api/v1/contacts/{id}/personal-data``): the tickets service answers the contact, its
  tickets, messages and history, and the identifiers and ticket numbers the others find theirs by; intake
  (mail, attachments' metadata, quarantined raw mail, mail sent, chats, web forms, social threads), surveys
  (CSAT and NPS answers) and analytics (ticket facts, survey answers) answer their parts over RPC; the
  gateway adds its own (customer tokens, sign-in links, portal sessions). Routing and kb-search hold nothing
  about a customer (routing: tickets' routing fields; kb-search: suggestions carry no typed text).
- **Erasure** (``POST /api/v1/contacts/{id}/erasure``): the gateway removes its own part, then the tickets
  service erases the contact and its tickets' content and announces ``contact_erased`` through its outbox,
  on which intake, surveys and analytics erase theirs (each once per event id). What reports count stays.
  Idempotent: a second request answers ``already_erased``.
"""
from sqlalchemy import String, cast, delete, or_, select, update

from helpdesk_common.database import utcnow
from helpdesk_common.outbox import forget_published

from .auth import tokens_changed
from .models import ApiToken, AuditEntry, CustomerLink, CustomerSession, Outbox, SignInThrottle

# The services with a part, in the order the export shows them (tickets' part comes first, apart).
PARTS = ("intake", "surveys", "analytics")
ERASED = "(erased)"


def _iso(moment):
    return moment.isoformat() if moment is not None else None


def _emails(contact):
    found = [contact["email"]] if contact.get("email") else []
    found += [i["value"] for i in contact.get("identifiers", []) if i["kind"] == "email"]
    return sorted({e.lower() for e in found})


def gateway_part(session, emails):
    """What the gateway holds about the person: portal sign-in links and sessions, and customer tokens (never
    their secret: only a hash is kept)."""
    return {
        "customer_tokens": [{"id": t.id, "name": t.name, "email": t.email, "created_at": _iso(t.created_at),
                             "revoked_at": _iso(t.revoked_at)}
                            for t in session.scalars(select(ApiToken).where(ApiToken.role == "customer",
                                                                            ApiToken.email.in_(emails)))],
        "sign_in_links": [{"created_at": _iso(link.created_at), "used_at": _iso(link.used_at)}
                          for link in session.scalars(select(CustomerLink).where(CustomerLink.email.in_(emails)))],
        "portal_sessions": [{"created_at": _iso(s.created_at), "seen_at": _iso(s.seen_at)}
                            for s in session.scalars(select(CustomerSession).where(CustomerSession.email.in_(emails)))],
    }


def export(sessions, rpc, contact_id, viewer):
    tickets = rpc.call("tickets", "contact_personal_data", contact_id, viewer)
    query = {"emails": tickets["emails"], "phones": tickets["phones"], "socials": tickets["socials"],
             "contact_id": contact_id, "ticket_numbers": [t["number"] for t in tickets["tickets"]]}
    parts = {"tickets": tickets}
    for service in PARTS:
        parts[service] = rpc.call(service, "personal_data", query, viewer)
    with sessions() as session:
        parts["gateway"] = gateway_part(session, [e.lower() for e in tickets["emails"]])
    return {"contact_id": contact_id, "exported_at": utcnow().isoformat(), "erased_at": tickets.get("erased_at"),
            "services": parts}


def erase_gateway_part(session, emails):
    """Portal sign-in links and sessions go; the person's customer tokens are revoked at once (every worker)
    and keep no name or address; audit entries that named the person (a customer token made for them) keep
    who did what and when, not the details."""
    if not emails:
        return
    named = or_(*[cast(AuditEntry.details, String).contains(email) for email in emails])
    if session.scalar(select(AuditEntry.id).where(named).limit(1)) is not None:
        session.execute(update(AuditEntry).where(named).values(details={"erased": True})
                        .execution_options(synchronize_session=False))
        forget_published(session, Outbox)  # the audit_recorded events relayed carried them too
    session.execute(delete(CustomerLink).where(CustomerLink.email.in_(emails)))
    session.execute(delete(CustomerSession).where(CustomerSession.email.in_(emails)))
    session.execute(delete(SignInThrottle).where(SignInThrottle.email.in_(emails)))
    tokens = select(ApiToken.id).where(ApiToken.role == "customer", ApiToken.email.in_(emails))
    if session.scalar(tokens.limit(1)) is not None:
        session.execute(update(ApiToken).where(ApiToken.id.in_(tokens), ApiToken.revoked_at.is_(None))
                        .values(revoked_at=utcnow()).execution_options(synchronize_session=False))
        session.execute(update(ApiToken).where(ApiToken.role == "customer", ApiToken.email.in_(emails))
                        .values(email=None, name=ERASED).execution_options(synchronize_session=False))
        tokens_changed(session)


def erase(sessions, rpc, contact_id, viewer):
    """The gateway's part first (it needs the addresses, which the tickets service then forgets), then the
    tickets service's erasure, which announces ``contact_erased`` to the others."""
    contact = rpc.call("tickets", "get_contact", contact_id, viewer)
    with sessions.begin() as session:
        erase_gateway_part(session, _emails(contact))
    return rpc.call("tickets", "erase_contact", contact_id, viewer)
