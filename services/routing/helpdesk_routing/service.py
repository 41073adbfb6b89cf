"""The routing nameko service: thin entrypoints over the rules in ``domain``.

Listens to ``tickets.events`` (``ticket_created``, ``ticket_updated``, ``sla_breached``) with
``reliable_handler`` (retries, then parking) and ``first_delivery`` (each event takes effect once),
and publishes ``ticket_assigned``, ``ticket_queued`` and ``ticket_escalated`` through its own outbox on
``routing.events``. A timer sweeps the queues now and then (working hours that began; a race lost).
New tickets that arrive together are routed in one transaction: each delivery's worker hands its event
to the ``Collector`` (group commit), which runs ``batch.route_new_tickets`` on all that wait.
"""

from helpdesk_common.adapters.queues import rpc
from nameko.timer import timer
from sqlalchemy import text

from helpdesk_common.adapters.consumer import reliable_batch_handler, reliable_handler
from helpdesk_common.inbox import first_deliveries, first_delivery
from helpdesk_common.contracts import given_fields, validate
from helpdesk_common.contracts.routing import (AgentChanges, Escalation, ManualAssignment, NewAgent, NewRule,
                                               NewTeam, PresenceChange, QueueQuery, RoutingChanges, RuleChanges,
                                               TeamChanges, Viewer)
from helpdesk_common.adapters.database import Database
from helpdesk_common.database import run_in_transaction, utcnow
from helpdesk_common.errors import EXPECTED_ERRORS
from helpdesk_common.adapters.metrics import EntrypointMetrics
from helpdesk_common.adapters.relay import OutboxRelay

from . import batch, domain
from helpdesk_common.adapters.group_commit import Collector
from .dependencies import RoutingSettings
from .models import Outbox, ProcessedEvent

DB_URL = "ROUTING_DB_URL"
ATTEMPTS = 5


class RoutingService:
    name = "routing"

    db = Database(DB_URL)
    outbox = OutboxRelay(Outbox, DB_URL, source="routing")
    settings = RoutingSettings()
    metrics = EntrypointMetrics()
    collector = Collector("ROUTING_BATCH_MAX", max_batch=200)

    def _write(self, change):
        """Run ``change(session)`` in one transaction; again if it lost a race to another replica
        (a unique key inserted first, a PostgreSQL deadlock or serialization failure)."""
        return run_in_transaction(self.db, change, attempts=ATTEMPTS)

    def _once(self, event, handler, effect):
        """Apply ``effect(session, ctx)`` to an event once, whatever the redeliveries."""
        ctx_of = lambda: domain.Context(actor="routing", correlation_id=event.get("correlation_id"), now=utcnow())  # noqa: E731

        def change(session):
            if not first_delivery(session, ProcessedEvent, event["id"], f"routing.{handler}"):
                return None
            return effect(session, ctx_of())

        return self._write(change)

    @staticmethod
    def _ctx(viewer):
        return domain.Context(actor=viewer.actor, correlation_id=viewer.correlation_id, now=utcnow())

    # --- events ---------------------------------------------------------------------------------

    @reliable_batch_handler("tickets", "ticket_created")
    def on_ticket_created(self, events):
        # The tickets the relay sent together are routed in one transaction (batch.route_new_tickets); a
        # batch that fails is split and each event retried alone, so a bad event fails only itself. Single
        # events (a split, a replay) that arrive together are joined by the group commit.
        return self.collector.handle(events, self._route_new_tickets, self._route_new_ticket)

    def _route_new_ticket(self, event):  # a lone event whose batch failed: a batch of one, to fail alone
        return self._route_new_tickets([event])[0]

    def _route_new_tickets(self, events):
        def change(session):
            fresh = first_deliveries(session, ProcessedEvent, [e["id"] for e in events], "routing.on_ticket_created")
            todo = [event for event in {e["id"]: e for e in events if e["id"] in fresh}.values()]
            views = batch.route_new_tickets(session, [e["data"]["ticket"] for e in todo], self.settings, utcnow(),
                                            [e.get("correlation_id") for e in todo])
            by_id = dict(zip((e["id"] for e in todo), views))
            return [by_id.pop(e["id"], None) for e in events]  # a twin delivery in the batch: None

        return self._write(change)

    # Only status and priority changes move anything here: the rest is acknowledged without a worker
    # (most ticket_updated events are routing's own decisions applied).
    @reliable_batch_handler("tickets", "ticket_updated", skip=lambda event: not domain.reacts_to(event["data"]))
    def on_ticket_updated(self, events):
        for event in events:  # each in its own transaction, once: a change re-routes one ticket
            data = event["data"]
            self._once(event, "on_ticket_updated",
                       lambda s, ctx: domain.ticket_changed(s, data["ticket"], data.get("changes") or [],
                                                            self.settings, ctx))

    @reliable_handler("tickets", "sla_breached")
    def on_sla_breached(self, event):
        data = event["data"]
        self._once(event, "on_sla_breached", lambda s, ctx: domain.sla_breached(s, data, self.settings, ctx))

    @timer(interval=15)
    def sweep_queues(self):
        self._write(lambda s: domain.sweep_all(s, domain.Context(now=utcnow())))

    # --- agents ---------------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def create_agent(self, agent, viewer):
        command, who = validate(NewAgent, agent), validate(Viewer, viewer, prefix="viewer.")
        return self._write(lambda s: domain.create_agent(s, command, self._ctx(who)))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_agent(self, agent_id):
        with self.db() as session:
            return domain.get_agent(session, int(agent_id))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_agents(self, team=None):
        with self.db() as session:
            return domain.list_agents(session, team)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def update_agent(self, agent_id, changes, viewer):
        command, who = validate(AgentChanges, changes), validate(Viewer, viewer, prefix="viewer.")
        return self._write(lambda s: domain.update_agent(s, int(agent_id), command, self._ctx(who)))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def set_presence(self, agent_id, presence, viewer):
        command, who = validate(PresenceChange, presence), validate(Viewer, viewer, prefix="viewer.")
        return self._write(lambda s: domain.set_presence(s, int(agent_id), command.presence, self._ctx(who),
                                                         viewer=who))

    # --- teams and rules ------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def create_team(self, team):
        command = validate(NewTeam, team)
        return self._write(lambda s: domain.create_team(s, command))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def update_team(self, name, changes, viewer):
        command, who = validate(TeamChanges, changes), validate(Viewer, viewer, prefix="viewer.")
        return self._write(lambda s: domain.update_team(s, name, command, self._ctx(who)))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_teams(self):
        with self.db() as session:
            return domain.list_teams(session)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def add_rule(self, rule):
        command = validate(NewRule, rule)
        return self._write(lambda s: domain.add_rule(s, command))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def update_rule(self, rule_id, changes):
        command = validate(RuleChanges, changes)
        return self._write(lambda s: domain.update_rule(s, int(rule_id), command))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_rules(self):
        with self.db() as session:
            return domain.list_rules(session)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def delete_rule(self, rule_id):
        return self._write(lambda s: domain.delete_rule(s, int(rule_id)))

    # --- tickets --------------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def assign_ticket(self, number, assignment, viewer):
        command, who = validate(ManualAssignment, assignment), validate(Viewer, viewer, prefix="viewer.")
        return self._write(lambda s: domain.assign_manually(s, str(number), command.agent_id, command.reason,
                                                            self._ctx(who), viewer=who))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def route_by_hand(self, number, changes, viewer, ticket=None):
        """A ticket's assignee, team or tier set by hand (a ticket PATCH): routing's decision, and its
        envelopes for the tickets service to apply at once (``ticket``: its view, for a ticket routing has
        not seen yet)."""
        command, who = validate(RoutingChanges, changes), validate(Viewer, viewer, prefix="viewer.")
        given = {field: getattr(command, field)
                 for field in given_fields(command, domain.ROUTED_FIELDS, not_null=("tier",))}

        def change(session):  # a rerun starts afresh: only the decisions of the committed attempt count
            ctx = self._ctx(who)
            view = domain.route_by_hand(session, str(number), given, ticket, ctx, viewer=who)
            return {"routing": view, "decisions": ctx.decided}

        return self._write(change)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def escalate_ticket(self, number, escalation, viewer):
        command, who = validate(Escalation, escalation), validate(Viewer, viewer, prefix="viewer.")
        return self._write(lambda s: domain.escalate(s, str(number), command.reason, "manual", self._ctx(who),
                                                     to_team=command.to_team, viewer=who))

    # Reads of scoped data take the caller's viewer too: which tickets and queues it may see is decided
    # here (helpdesk_routing.access), by routing's own record of each ticket's team.
    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_ticket_routing(self, number, viewer):
        who = validate(Viewer, viewer, prefix="viewer.")
        with self.db() as session:
            return domain.routing_of(session, str(number), viewer=who)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_queue(self, query, viewer):
        filters, who = validate(QueueQuery, query or {}), validate(Viewer, viewer, prefix="viewer.")
        with self.db() as session:
            return domain.queue(session, filters.team, filters.limit, viewer=who)

    @rpc
    def ping(self):
        """For health checks: answers when the service is up and its database reachable."""
        with self.db() as session:
            session.execute(text("SELECT 1"))
        return {"service": self.name, "ok": True}
