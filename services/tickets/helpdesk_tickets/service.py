"""The tickets nameko service: thin RPC entrypoints over the rules in ``domain``."""
from helpdesk_common.adapters.queues import rpc
from sqlalchemy import text
from sqlalchemy.orm.exc import StaleDataError

from helpdesk_common.contracts import validate
from helpdesk_common.contracts.contacts import ContactMerge, ContactQuery, Identifier, NewContact, TicketContact
from helpdesk_common.contracts.organisations import (ContactOrganisation, NewOrganisation, OrganisationChanges,
                                                     OrganisationQuery)
from helpdesk_common.contracts.tickets import (CustomerResolution, NewCannedReply, NewCustomField, NewMessage,
                                               NewTicket, NotificationsRead, PresenceUpdate, TicketChanges,
                                               TicketLinkRequest, TicketMergeRequest, TicketQuery, Viewer)
from helpdesk_common.contracts.tickets import ProblemLinkRequest, ProblemRequest, ProblemUpdate
from helpdesk_common.adapters.consumer import reliable_batch_handler
from helpdesk_common.adapters.database import Database
from helpdesk_common.database import run_in_transaction, utcnow
from helpdesk_common.adapters.group_commit import Collector
from helpdesk_common.errors import EXPECTED_ERRORS, HelpdeskError, ValidationFailed, to_wire
from helpdesk_common.failpoints import failpoint
from helpdesk_common.adapters.metrics import EntrypointMetrics
from helpdesk_common.adapters.relay import OutboxRelay

from . import (canned, contacts, custom_fields, domain, export, followers, links, organisations, personal_data,
               presence, problems, ticket_page)
from .dependencies import TicketRules
from .entrypoints import sla_timer
from .exceptions import concurrent_change
from .models import Outbox

DB_URL = "TICKETS_DB_URL"


def _contact_id(value, what="contact_id"):
    """A contact's id as a positive integer, else a 422 saying so."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationFailed(f"{what} must be a positive integer.",
                               details=[{"field": what, "code": "wrong_type", "message": "expected an integer"}])
    return value


def _idempotency_key(key):
    """``None``, or a key of 1 to 200 characters (the column's width), else a 422 saying so."""
    if key is None:
        return None
    if not isinstance(key, str) or not 1 <= len(key) <= 200:
        raise ValidationFailed("idempotency_key must be a string of 1 to 200 characters.",
                               details=[{"field": "idempotency_key", "code": "invalid_format",
                                         "message": "1 to 200 characters"}])
    return key


class TicketsService:
    name = "tickets"
    _clocks_backfilled = False  # set once this process gave old open tickets their SLA clocks

    db = Database(DB_URL)
    outbox = OutboxRelay(Outbox, DB_URL, source="tickets")
    rules = TicketRules()
    metrics = EntrypointMetrics()
    writeback = Collector("ROUTING_WRITEBACK_MAX", max_batch=200)  # routing's decisions, applied together

    def _write(self, change, number=""):
        """Run ``change(session)`` in one transaction, rerun if it lost a race with another replica."""
        try:
            return run_in_transaction(self.db, change)
        except StaleDataError:
            raise concurrent_change(number)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def create_ticket(self, ticket, viewer, idempotency_key=None):
        """Open a ticket; returns ``{"ticket": ..., "created": bool}`` (False: an idempotent repeat)."""
        command, who = validate(NewTicket, ticket), validate(Viewer, viewer, prefix="viewer.")
        view, created = self._write(lambda s: domain.open_ticket(s, command, who, self.rules, idempotency_key))
        return {"ticket": domain.shown_to(who, view), "created": created}

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def create_tickets(self, requests):
        """Open many tickets in one transaction: the gateway batches concurrent requests into one call.

        ``requests``: ``[{"ticket": ..., "viewer": ..., "idempotency_key": ...}]``. The answer has one
        entry per request, in order: ``{"ticket": ..., "created": bool}`` or ``{"error": ...}``
        (``helpdesk_common.errors.to_wire``), so one refused request never fails the others.
        """
        answers = [None] * len(requests)
        accepted = []
        for index, request in enumerate(requests):
            try:
                accepted.append((index, (validate(NewTicket, request.get("ticket")),
                                         validate(Viewer, request.get("viewer"), prefix="viewer."),
                                         request.get("idempotency_key"))))
            except HelpdeskError as error:
                answers[index] = {"error": to_wire(error)}
        if accepted:
            outcomes = self._write(lambda s: domain.open_tickets(s, [item for _, item in accepted], self.rules))
            failpoint("tickets.after_create_tickets_commit")  # committed, the caller not yet answered
            for (index, (_, who, _)), outcome in zip(accepted, outcomes):
                answers[index] = ({"error": to_wire(outcome)} if isinstance(outcome, HelpdeskError)
                                  else {"ticket": domain.shown_to(who, outcome[0]), "created": outcome[1]})
        return answers

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_ticket(self, number, viewer):
        who = validate(Viewer, viewer, prefix="viewer.")
        with self.db() as session:
            view = domain.shown_to(who, domain.ticket_view(domain.find_ticket(session, number, who), self.rules))
            return domain.mark_yours(session, who, [view])[0]

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_ticket_page(self, number, viewer):
        """What the workspace's ticket page shows from this service, in one call (``ticket_page.read``)."""
        who = validate(Viewer, viewer, prefix="viewer.")
        with self.db() as session:
            return ticket_page.read(session, str(number), who, self.rules)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_tickets(self, query, viewer):
        filters, who = validate(TicketQuery, query), validate(Viewer, viewer, prefix="viewer.")
        with self.db() as session:
            page = domain.find_tickets(session, filters, who, self.rules)
            page["items"] = domain.mark_yours(session, who, [domain.shown_to(who, view) for view in page["items"]])
        return page

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def count_tickets(self, viewer):
        """The exact number of tickets in each list view the viewer may see (the workspace's sidebar)."""
        who = validate(Viewer, viewer, prefix="viewer.")
        with self.db() as session:
            return domain.count_tickets(session, who, self.rules)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_ticket_list_page(self, query, viewer):
        """The workspace's list page from this service in one call and one session: ``list_tickets``'s
        page and ``count_tickets``'s counts, by the same functions with the same viewer."""
        filters, who = validate(TicketQuery, query), validate(Viewer, viewer, prefix="viewer.")
        with self.db() as session:
            page = domain.find_tickets(session, filters, who, self.rules)
            counts = domain.count_tickets(session, who, self.rules)
        page["items"] = [domain.shown_to(who, view) for view in page["items"]]
        return {"page": page, "counts": counts}

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def update_ticket(self, number, changes, viewer, decisions=None, dry_run=False):
        """``decisions``: routing's decisions for the assignee, team or tier given in the same request
        (``route_by_hand``), applied first, at once, as their events will be (which then change nothing).
        ``dry_run``: check the change (the caller may see the ticket, the workflow allows it, the custom
        fields are valid) and answer the ticket as it would be, changing nothing."""
        command, who = validate(TicketChanges, changes), validate(Viewer, viewer, prefix="viewer.")
        decisions = domain.routing_decisions(decisions or [])
        if dry_run:
            with self.db() as session:
                try:
                    return domain.change_ticket(session, str(number), command, who, self.rules)
                finally:
                    session.rollback()
        return self._write(lambda s: domain.change_ticket(s, str(number), command, who, self.rules,
                                                          decisions=decisions), number)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def resolve_by_customer(self, number, resolution, viewer):
        """The customer's "it is solved" (``{"solved": true}``) or "reopen" (false), within the workflow."""
        command, who = validate(CustomerResolution, resolution), validate(Viewer, viewer, prefix="viewer.")
        return self._write(lambda s: domain.customer_resolution(s, str(number), command.solved, who, self.rules),
                           number)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def add_message(self, number, message, viewer, idempotency_key=None):
        """Add a reply or note; a repeated ``idempotency_key`` (per author) returns the first message."""
        command, who = validate(NewMessage, message), validate(Viewer, viewer, prefix="viewer.")
        key = _idempotency_key(idempotency_key)
        return self._write(lambda s: domain.add_message(s, str(number), command, who, self.rules,
                                                        idempotency_key=key), number)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_messages(self, number, viewer):
        who = validate(Viewer, viewer, prefix="viewer.")
        with self.db() as session:
            return domain.list_messages(session, number, who)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_history(self, number, viewer):
        who = validate(Viewer, viewer, prefix="viewer.")
        with self.db() as session:
            return domain.history(session, number, who)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def create_problem(self, problem, viewer):
        """A problem ticket with ``problem["incidents"]`` linked to it; answers the problem and its incidents."""
        command, who = validate(ProblemRequest, problem), validate(Viewer, viewer, prefix="viewer.")
        return self._write(lambda s: problems.create_problem(s, command, who, self.rules))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def link_incidents(self, number, link, viewer):
        command, who = validate(ProblemLinkRequest, link), validate(Viewer, viewer, prefix="viewer.")
        return self._write(lambda s: problems.link_incidents(s, str(number), command.incidents, who, self.rules),
                           number)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_problem(self, number, viewer):
        who = validate(Viewer, viewer, prefix="viewer.")
        with self.db() as session:
            return problems.problem_view(session, str(number), who, self.rules)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def send_problem_update(self, number, update, viewer):
        """One public update to the customer of every open incident of the problem ``number``."""
        command, who = validate(ProblemUpdate, update), validate(Viewer, viewer, prefix="viewer.")
        return self._write(lambda s: problems.send_update(s, str(number), command, who, self.rules), number)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def link_tickets(self, number, link, viewer):
        """Link two tickets as related; answers the ticket's links."""
        command, who = validate(TicketLinkRequest, link), validate(Viewer, viewer, prefix="viewer.")
        return self._write(lambda s: links.link(s, str(number), command.other, who, self.rules), number)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_links(self, number, viewer):
        who = validate(Viewer, viewer, prefix="viewer.")
        with self.db() as session:
            return links.links_of(session, str(number), who)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def merge_ticket(self, number, merge, viewer):
        """Merge the duplicate ``number`` into ``merge["into"]``; answers the survivor."""
        command, who = validate(TicketMergeRequest, merge), validate(Viewer, viewer, prefix="viewer.")
        return self._write(lambda s: links.merge(s, str(number), command.into, who, self.rules), number)

    # --- following tickets and notifications (``followers``) ------------------------------------------

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def follow_ticket(self, number, viewer, following=True):
        who = validate(Viewer, viewer, prefix="viewer.")
        return self._write(lambda s: followers.follow(s, str(number), who, following=bool(following)), number)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_following(self, number, viewer):
        who = validate(Viewer, viewer, prefix="viewer.")
        with self.db() as session:
            return followers.following(session, str(number), who)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_notifications(self, viewer):
        who = validate(Viewer, viewer, prefix="viewer.")
        with self.db() as session:
            return followers.notifications(session, who)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def mark_notifications_read(self, read, viewer):
        command, who = validate(NotificationsRead, read), validate(Viewer, viewer, prefix="viewer.")
        return self._write(lambda s: followers.mark_read(s, command, who))

    # --- presence: who has a ticket open, who types (collision warnings) ---------------------------

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def ticket_presence(self, number, viewer, update=None, name=None):
        """With ``update`` (PresenceUpdate): the caller is here; without: only look. Answers the others."""
        who = validate(Viewer, viewer, prefix="viewer.")
        if update is None:
            with self.db() as session:
                return presence.present(session, str(number), who, utcnow())
        command = validate(PresenceUpdate, update)
        if name is not None and (not isinstance(name, str) or len(name) > 200):
            raise ValidationFailed("name must be a string of at most 200 characters.")
        return self._write(lambda s: presence.here(s, str(number), who, command.typing, name, utcnow(),
                                                         present=command.here), number)

    # --- canned replies (``canned``: shared ones and each agent's own) ----------------------------------

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def create_canned_reply(self, reply, viewer):
        command, who = validate(NewCannedReply, reply), validate(Viewer, viewer, prefix="viewer.")
        return self._write(lambda s: canned.create(s, command, who, self.rules.workflow))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_canned_replies(self, viewer):
        who = validate(Viewer, viewer, prefix="viewer.")
        with self.db() as session:
            return canned.list_for(session, who)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def delete_canned_reply(self, reply_id, viewer):
        who = validate(Viewer, viewer, prefix="viewer.")
        return self._write(lambda s: canned.delete(s, _contact_id(reply_id, "reply_id"), who))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def render_canned_reply(self, reply_id, number, viewer, agent_name=None):
        """The reply filled in for the ticket; ``agent_name``: the caller's display name (the gateway's)."""
        who = validate(Viewer, viewer, prefix="viewer.")
        if agent_name is not None and (not isinstance(agent_name, str) or len(agent_name) > 200):
            raise ValidationFailed("agent_name must be a string of at most 200 characters.")
        with self.db() as session:
            return canned.render(session, _contact_id(reply_id, "reply_id"), str(number), who, agent_name)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def export_history(self, cursor=None, limit=500):
        """Every ticket's view, status changes and messages' metadata, a page at a time (``export.export_page``):
        what read models are rebuilt from (``analytics-rebuild``)."""
        with self.db() as session:
            return export.export_page(session, cursor, limit, self.rules, utcnow())

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def define_custom_field(self, definition):
        command = validate(NewCustomField, definition)
        return self._write(lambda s: custom_fields.define(s, command))

    @rpc
    def list_custom_fields(self):
        with self.db() as session:
            return custom_fields.all_definitions(session)

    @rpc
    def get_workflow(self):
        return self.rules.workflow.describe()

    # --- contacts (agents and admins; which contacts a team-limited agent sees: contacts.visible) -------

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def create_contact(self, contact, viewer):
        command, who = validate(NewContact, contact), validate(Viewer, viewer, prefix="viewer.")
        contacts.check_staff(who)
        return self._write(lambda s: contacts.create(s, command, self.rules.phone_region))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_contact(self, contact_id, viewer):
        who = validate(Viewer, viewer, prefix="viewer.")
        contacts.check_staff(who)
        with self.db() as session:
            return contacts.contact_view(contacts.get(session, _contact_id(contact_id), viewer=who))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def find_contacts(self, query, viewer):
        filters, who = validate(ContactQuery, query or {}), validate(Viewer, viewer, prefix="viewer.")
        contacts.check_staff(who)
        with self.db() as session:
            return contacts.find(session, filters, self.rules.phone_region, viewer=who)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def add_contact_identifier(self, contact_id, identifier, viewer):
        command, who = validate(Identifier, identifier), validate(Viewer, viewer, prefix="viewer.")
        contacts.check_staff(who)
        return self._write(lambda s: contacts.add_identifier(s, _contact_id(contact_id), command,
                                                            self.rules.phone_region, viewer=who))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def remove_contact_identifier(self, contact_id, identifier_id, viewer):
        who = validate(Viewer, viewer, prefix="viewer.")
        contacts.check_staff(who)
        return self._write(lambda s: contacts.remove_identifier(s, _contact_id(contact_id),
                                                               _contact_id(identifier_id, "identifier_id"), viewer=who))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def merge_contacts(self, contact_id, merge, viewer):
        command, who = validate(ContactMerge, merge), validate(Viewer, viewer, prefix="viewer.")
        contacts.check_staff(who)
        return self._write(lambda s: domain.merge_contacts(s, _contact_id(contact_id), command.other, who, self.rules))

    # --- personal data (admins only; the gateway gathers the other services' parts) ----------------

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def contact_personal_data(self, contact_id, viewer):
        """Everything held here about the contact, and the identifiers and tickets the other services look
        theirs up by."""
        personal_data.check_admin(validate(Viewer, viewer, prefix="viewer."))
        with self.db() as session:
            return personal_data.export(session, _contact_id(contact_id), self.rules)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def erase_contact(self, contact_id, viewer):
        """Erase the contact's personal data and announce ``contact_erased``; idempotent."""
        who = validate(Viewer, viewer, prefix="viewer.")
        personal_data.check_admin(who)
        return self._write(lambda s: personal_data.erase(s, _contact_id(contact_id), utcnow(), who.actor))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def link_ticket_contact(self, number, link, viewer):
        command, who = validate(TicketContact, link), validate(Viewer, viewer, prefix="viewer.")
        return domain.shown_to(who, self._write(
            lambda s: domain.link_ticket_contact(s, str(number), command.contact_id, who, self.rules), number))

    # --- organisations (agents read, admins change: organisations.py) ------------------------------------

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def create_organisation(self, organisation, viewer):
        command, who = validate(NewOrganisation, organisation), validate(Viewer, viewer, prefix="viewer.")
        contacts.check_admin(who)
        return self._write(lambda s: organisations.create(s, command, utcnow()))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def change_organisation(self, organisation_id, changes, viewer):
        command, who = validate(OrganisationChanges, changes), validate(Viewer, viewer, prefix="viewer.")
        contacts.check_admin(who)
        return self._write(lambda s: organisations.change(s, _contact_id(organisation_id, "organisation_id"), command))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_organisation(self, organisation_id, viewer):
        who = validate(Viewer, viewer, prefix="viewer.")
        contacts.check_staff(who)
        with self.db() as session:
            return organisations.view(session, organisations.get(session, _contact_id(organisation_id,
                                                                                      "organisation_id")))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def find_organisations(self, query, viewer):
        filters, who = validate(OrganisationQuery, query or {}), validate(Viewer, viewer, prefix="viewer.")
        contacts.check_staff(who)
        with self.db() as session:
            return organisations.find(session, filters)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def set_contact_organisation(self, contact_id, choice, viewer):
        command, who = validate(ContactOrganisation, choice), validate(Viewer, viewer, prefix="viewer.")
        contacts.check_admin(who)
        return self._write(lambda s: contacts.set_organisation(s, _contact_id(contact_id), command.organisation_id,
                                                              viewer=who))

    # Routing's decisions, a relay batch at a time (``reliable_batch_handler``). A concurrent edit
    # (StaleDataError) is not a HelpdeskError, so it is retried with backoff instead of parked.
    @reliable_batch_handler("routing", "ticket_assigned")
    def apply_assignment(self, events):
        """Routing chose agents: each ticket takes its assignee, team, tier (and priority)."""
        self._apply_routing(events)

    @reliable_batch_handler("routing", "ticket_queued")
    def apply_queueing(self, events):
        """No agent was free: each ticket waits unassigned in the chosen team's queue."""
        self._apply_routing(events)

    @reliable_batch_handler("routing", "ticket_escalated")
    def apply_escalation(self, events):
        """Tickets moved up their escalation path: new tier (and team)."""
        self._apply_routing(events)

    def _apply_routing(self, events):
        # The decisions routing's relay sent together are applied in one transaction; a batch that fails
        # is split and each decision retried alone. Single ones (a split, a replay) that arrive together
        # are joined by the group commit.
        self.writeback.handle(events, self._apply_routing_batch, self._apply_routing_one)

    def _apply_routing_one(self, event):
        return run_in_transaction(self.db, lambda s: domain.apply_routing(s, event, self.rules))

    def _apply_routing_batch(self, events):
        return run_in_transaction(self.db, lambda s: domain.apply_routing_batch(s, events, self.rules, views=False))

    @sla_timer("SLA_CHECK_INTERVAL", 30.0)
    def check_sla(self):
        """Announce SLA warnings and breaches that fell due (once each, whatever the replicas).

        The first tick of each process first gives clocks to open tickets older than the SLA clocks.
        """
        if not TicketsService._clocks_backfilled:
            after = 0
            while after is not None:
                after = run_in_transaction(
                    self.db, lambda s: domain.backfill_sla_clocks(s, self.rules, utcnow(), after_id=after))[1]
            TicketsService._clocks_backfilled = True  # per process: new tickets get clocks when they open
        for _ in range(10):  # a batch per transaction; the next tick takes what is left
            if not run_in_transaction(self.db, lambda s: domain.check_sla(s, self.rules, utcnow())):
                break

    @rpc
    def ping(self):
        """For health checks: answers when the service is up and its database reachable."""
        with self.db() as session:
            session.execute(text("SELECT 1"))
        return {"service": self.name, "ok": True}
