"""What the agent workspace's ticket page shows from this service, read in one session.

The same functions the single reads use (``find_ticket``, ``list_messages``, ``history``, ``links_of``,
``following``, ``canned.list_for``, the contact, ``find_tickets`` by requester), with the same viewer, so
the page can show nothing those reads would not. One call instead of eight: the gateway publishes (and
waits for the broker's confirm of) one request instead of eight, and this service, which answers its calls
one after another on SQLite, opens one session instead of eight. Plain code: the entrypoint validates and
calls :func:`read`.
"""
import logging

from helpdesk_common.contracts import validate
from helpdesk_common.contracts.tickets import TicketQuery
from helpdesk_common.errors import HelpdeskError

from . import canned, contacts, followers
from .domain import find_ticket, find_tickets, history, list_messages, shown_to, ticket_view
from .links import links_of

log = logging.getLogger(__name__)

OTHER_TICKETS = 5


def _optional(what, read, default):
    """A part the page can do without (the contact, the requester's other tickets)."""
    try:
        return read()
    except HelpdeskError as error:
        log.info("ticket page without %s: %s", what, error.code)
        return default


def read(session, number, viewer, rules):
    """``{"ticket", "messages", "history", "links", "following", "canned_replies", "contact",
    "other_tickets"}`` for staff; the ticket's own error (404 for one the viewer may not see) first."""
    ticket = find_ticket(session, number, viewer)
    view = shown_to(viewer, ticket_view(ticket, rules))
    requester = view["requester"]
    contact = None
    if requester.get("contact_id"):
        def read_contact():
            contacts.check_staff(viewer)
            return contacts.contact_view(contacts.get(session, int(requester["contact_id"]), viewer=viewer))
        contact = _optional("contact", read_contact, None)
    others = []
    if requester.get("email"):
        query = validate(TicketQuery, {"requester": requester["email"], "limit": OTHER_TICKETS + 1})
        others = _optional("other tickets", lambda: find_tickets(session, query, viewer, rules)["items"], [])
    return {"ticket": view, "messages": list_messages(session, number, viewer), "history": history(session, number, viewer),
            "links": links_of(session, number, viewer), "following": followers.following(session, number, viewer),
            "canned_replies": canned.list_for(session, viewer), "contact": contact,
            "other_tickets": [shown_to(viewer, t) for t in others if t["number"] != view["number"]][:OTHER_TICKETS]}
