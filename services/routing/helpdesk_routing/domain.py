"""The routing rules of the service, as plain functions of a SQLAlchemy session. No nameko in here.

Every function runs inside the caller's transaction and stages its events in the outbox there, so an
assignment, its record and its event are committed together or not at all.

Correct under concurrency (several replicas, one database):

- An agent's load goes up only through :func:`claim_agent`, one conditional UPDATE
  (``load < capacity AND presence = 'online'``). On PostgreSQL a concurrent claim of the same agent waits
  for the row lock and re-checks the condition against the committed load (READ COMMITTED re-evaluates
  the WHERE clause of an UPDATE on the new row version); on SQLite every write transaction is
  ``BEGIN IMMEDIATE`` (``helpdesk_common.database``), so claims are serialised. Either way no agent
  passes capacity. Manual assignment is the one deliberate exception (a supervisor may overload).
- A ticket is routed once: its ``routed_tickets`` row is inserted by the first ``ticket_created`` (the
  primary key refuses a second), and a queued ticket changes hands only through a conditional UPDATE
  on ``state = 'queued'``; on PostgreSQL each queued ticket is first locked alone with
  ``FOR UPDATE SKIP LOCKED`` (:func:`_lock_queued`), so two replicas draining one queue take different
  tickets instead of waiting on each other, and the queue's order stays visible to both.
"""
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, func, select, update

from helpdesk_common.business_hours import Calendar
from helpdesk_common.contracts import given_fields
from helpdesk_common.contracts.routing import agent_id_of, assignee_ref
from helpdesk_common.database import utcnow
from helpdesk_common.errors import ValidationFailed
from helpdesk_common.events import new_event
from helpdesk_common.outbox import stage

from . import access
from . import exceptions as errors
from .models import Agent, AgentTeam, Assignment, EscalationRecord, Outbox, RoutedTicket, Rule, Team
from .rules import PRIORITY_RANK, Candidate, RuleSpec, eligible, ranked_agents

MAX_TIER = 9
QUEUE_PAGE = 50
QUEUE_SCAN_LIMIT = 500


@dataclass(frozen=True)
class Settings:
    """The organisation's routing settings (the service's config)."""

    default_team: str = None
    release_statuses: frozenset = frozenset({"resolved", "closed"})
    escalate_on_sla_breach: bool = True
    escalate_after_reopens: int = 2
    escalate_on_urgent: bool = True


@dataclass
class Context:
    """Who causes a change, and the request or event it belongs to."""

    actor: str = "routing"
    correlation_id: str = None
    now: datetime = field(default_factory=utcnow)
    decided: list = field(default_factory=list)  # the decisions announced, in order (their envelopes)


def iso(moment):
    return moment.isoformat() if moment is not None else None


def _decide(session, routed, ctx, event_type, data):
    """Announce a decision about ``routed`` (assignee, team, tier, priority), numbered per ticket: the
    tickets service applies a ticket's decisions in the order they were made, so one arriving late (a
    redelivery, another replica's) never undoes a newer one."""
    routed.decisions = (routed.decisions or 0) + 1
    envelope = new_event(event_type, {**data, "sequence": routed.decisions, "actor": ctx.actor},
                         correlation_id=ctx.correlation_id, subject=routed.number)
    stage(session, Outbox, envelope)
    ctx.decided.append(envelope)


def _is_postgres(session):
    return session.bind.dialect.name == "postgresql"


# --- Views ----------------------------------------------------------------------------------------

def agent_view(agent, teams):
    return {"id": agent.id, "name": agent.name, "email": agent.email, "languages": list(agent.languages or []),
            "skills": dict(agent.skills or {}), "teams": sorted(teams), "tier": agent.tier,
            "capacity": agent.capacity, "load": agent.load, "presence": agent.presence,
            "working_hours": agent.working_hours, "assignee": assignee_ref(agent.id),
            "created_at": iso(agent.created_at), "updated_at": iso(agent.updated_at)}


def team_view(team, queued=0):
    return {"name": team.name, "tier": team.tier, "strategy": team.strategy, "escalates_to": team.escalates_to,
            "description": team.description, "queued": queued}


def rule_view(rule):
    return {"id": rule.id, "name": rule.name, "position": rule.position, "enabled": rule.enabled,
            "conditions": rule.conditions, "actions": rule.actions}


def routed_view(routed):
    return {"number": routed.number, "state": routed.state, "team": routed.team, "tier": routed.tier,
            "priority": routed.priority, "language": routed.language, "required_skills": routed.required_skills,
            "agent_id": routed.agent_id,
            "assignee": assignee_ref(routed.agent_id) if routed.agent_id else routed.outside_assignee,
            "queued_at": iso(routed.queued_at), "created_at": iso(routed.created_at),
            "reopen_count": routed.reopen_count}


def assignment_view(assignment):
    return {"id": assignment.id, "ticket_number": assignment.ticket_number, "agent_id": assignment.agent_id,
            "assignee": assignee_ref(assignment.agent_id), "team": assignment.team, "tier": assignment.tier,
            "at": iso(assignment.at), "reason": assignment.reason, "actor": assignment.actor,
            "manual": assignment.manual}


def _teams_of(session, agent_id):
    return list(session.scalars(select(AgentTeam.team).where(AgentTeam.agent_id == agent_id)))


def find_agent(session, agent_id):
    agent = session.get(Agent, agent_id, populate_existing=True)  # load moves by Core UPDATEs: read it afresh
    if agent is None:
        raise errors.agent_not_found(agent_id)
    return agent


def find_team(session, name):
    team = session.get(Team, name)
    if team is None:
        raise errors.team_not_found(name)
    return team


def find_routed(session, number, lock=False, viewer=None):
    """The routing record of ticket ``number``; with ``viewer``, only if they may act on it (the same 404
    as a missing ticket otherwise: see ``access``). Routing's own rules pass no viewer."""
    query = select(RoutedTicket).where(RoutedTicket.number == number)
    if lock and _is_postgres(session):
        query = query.with_for_update()
    routed = session.scalars(query).first()
    if routed is None:
        raise errors.ticket_not_found(number)
    return routed if viewer is None else access.check_ticket(viewer, routed, number)


def _known_teams(session, names):
    names = list(dict.fromkeys(names))
    known = set(session.scalars(select(Team.name).where(Team.name.in_(names)))) if names else set()
    missing = [n for n in names if n not in known]
    if missing:
        raise ValidationFailed(f"Unknown team(s): {', '.join(missing)}; create them first.",
                               details=[{"field": "teams", "code": "invalid_value",
                                         "message": f"unknown team {n!r}"} for n in missing])
    return names


# --- Teams, agents, rules -------------------------------------------------------------------------

def create_team(session, command):
    if session.get(Team, command.name) is not None:
        raise errors.team_exists(command.name)
    if command.escalates_to:
        _known_escalation(session, command.name, command.escalates_to)
    team = Team(name=command.name, tier=command.tier, strategy=command.strategy,
                escalates_to=command.escalates_to, description=command.description, created_at=utcnow())
    session.add(team)
    session.flush()
    return team_view(team)


def _known_escalation(session, name, target):
    if target == name:
        raise ValidationFailed("A team cannot escalate to itself.",
                               details=[{"field": "escalates_to", "code": "invalid_value", "message": "same team"}])
    _known_teams(session, [target])


TEAM_FIELDS = ("tier", "strategy", "escalates_to", "description")
AGENT_FIELDS = ("name", "email", "languages", "skills", "teams", "tier", "capacity", "working_hours")


def update_team(session, name, changes, ctx):
    team = find_team(session, name)
    fields = given_fields(changes, TEAM_FIELDS, not_null=("tier", "strategy"))
    given = {field: getattr(changes, field) for field in fields}
    if given.get("escalates_to"):
        _known_escalation(session, name, given["escalates_to"])
    for key, value in given.items():
        setattr(team, key, value)
    session.flush()
    sweep_team(session, team, ctx)  # a new strategy or tier may let waiting tickets through
    return team_view(team, _queued_count(session, name))


def _queued_count(session, team):
    return session.scalar(select(func.count()).select_from(RoutedTicket).where(
        RoutedTicket.state == "queued", RoutedTicket.team == team))


def list_teams(session):
    counts = dict(session.execute(select(RoutedTicket.team, func.count()).where(RoutedTicket.state == "queued")
                                  .group_by(RoutedTicket.team)).all())
    return [team_view(t, counts.get(t.name, 0)) for t in session.scalars(select(Team).order_by(Team.name))]


def create_agent(session, command, ctx):
    teams = _known_teams(session, command.teams)
    if session.scalar(select(Agent.id).where(Agent.email == command.email)) is not None:
        raise errors.agent_exists(command.email)
    now = ctx.now
    agent = Agent(name=command.name, email=command.email, languages=list(command.languages),
                  skills=dict(command.skills), tier=command.tier, capacity=command.capacity, load=0,
                  presence=command.presence,
                  working_hours=command.working_hours.model_dump(mode="json") if command.working_hours else None,
                  last_assignment_id=0, created_at=now, updated_at=now)
    session.add(agent)
    session.flush()
    session.add_all([AgentTeam(agent_id=agent.id, team=t) for t in teams])
    session.flush()
    drain_for_agent(session, agent.id, ctx)
    session.refresh(agent)
    return agent_view(agent, teams)


def get_agent(session, agent_id):
    agent = find_agent(session, agent_id)
    return agent_view(agent, _teams_of(session, agent.id))


def list_agents(session, team=None):
    query = select(Agent).order_by(Agent.id)
    if team:
        query = query.join(AgentTeam, AgentTeam.agent_id == Agent.id).where(AgentTeam.team == team)
    agents = list(session.scalars(query))
    memberships = {}
    for agent_id, name in session.execute(select(AgentTeam.agent_id, AgentTeam.team)):
        memberships.setdefault(agent_id, []).append(name)
    return [agent_view(a, memberships.get(a.id, [])) for a in agents]


def update_agent(session, agent_id, changes, ctx):
    """Change an agent's profile. More capacity, a new team or tier may take waiting tickets at once.

    ``load`` is never written here: only the conditional updates of claim and release change it.
    """
    agent = find_agent(session, agent_id)
    fields = given_fields(changes, AGENT_FIELDS, not_null=AGENT_FIELDS[:-1])  # null working hours: always
    given = {field: value for field, value in changes.model_dump(mode="json").items() if field in fields}
    if "email" in given and given["email"] != agent.email:
        if session.scalar(select(Agent.id).where(Agent.email == given["email"])) is not None:
            raise errors.agent_exists(given["email"])
    teams = given.pop("teams", None)
    if teams is not None:
        teams = _known_teams(session, teams)
        session.execute(delete(AgentTeam).where(AgentTeam.agent_id == agent.id))
        session.add_all([AgentTeam(agent_id=agent.id, team=t) for t in teams])
    values = {key: given[key] for key in ("name", "email", "languages", "skills", "tier", "capacity",
                                          "working_hours") if key in given}
    values["updated_at"] = ctx.now
    session.execute(update(Agent).where(Agent.id == agent.id).values(**values))
    session.flush()
    drain_for_agent(session, agent.id, ctx)
    return get_agent(session, agent.id)


def set_presence(session, agent_id, presence, ctx, viewer=None):
    """Online, away or offline. Coming online takes waiting tickets at once; going away keeps the
    agent's tickets (a supervisor reassigns them by hand if need be). With ``viewer``: only their own
    presence, unless an admin (``access.check_own_agent``)."""
    agent = find_agent(session, agent_id)
    if viewer is not None:
        access.check_own_agent(viewer, agent)
    session.execute(update(Agent).where(Agent.id == agent.id).values(presence=presence, updated_at=ctx.now))
    if presence == "online":
        drain_for_agent(session, agent.id, ctx)
    return get_agent(session, agent.id)


def add_rule(session, command):
    """Insert a rule at ``position`` (others move down) or last."""
    if command.actions.team:
        _known_teams(session, [command.actions.team])
    last = session.scalar(select(func.max(Rule.position))) or 0
    position = command.position or last + 1
    if position <= last:
        session.execute(update(Rule).where(Rule.position >= position).values(position=Rule.position + 1))
    rule = Rule(name=command.name, position=min(position, last + 1), enabled=command.enabled,
                conditions=command.conditions.model_dump(mode="json", exclude_defaults=True),
                actions=command.actions.model_dump(mode="json", exclude_defaults=True), created_at=utcnow())
    session.add(rule)
    session.flush()
    return rule_view(rule)


RULE_FIELDS = ("name", "position", "enabled", "conditions", "actions")


def update_rule(session, rule_id, changes):
    """Change the fields given (``RuleChanges``); a new position moves the rule and shifts the rules
    between its old and new place by one (the order stays 1..n, no gaps, no ties)."""
    rule = session.scalar(select(Rule).where(Rule.id == rule_id).with_for_update())
    if rule is None:
        raise errors.rule_not_found(rule_id)
    given = given_fields(changes, RULE_FIELDS, not_null=RULE_FIELDS)
    if "actions" in given and changes.actions.team:
        _known_teams(session, [changes.actions.team])
    if "position" in given:
        _move_rule(session, rule, changes.position)
    for field in ("name", "enabled"):
        if field in given:
            setattr(rule, field, getattr(changes, field))
    for field in ("conditions", "actions"):
        if field in given:
            setattr(rule, field, getattr(changes, field).model_dump(mode="json", exclude_defaults=True))
    session.flush()
    return rule_view(rule)


def _move_rule(session, rule, position):
    last = session.scalar(select(func.max(Rule.position))) or 1
    target, current = min(position, last), rule.position
    if target < current:
        session.execute(update(Rule).where(Rule.position >= target, Rule.position < current)
                        .values(position=Rule.position + 1))
    elif target > current:
        session.execute(update(Rule).where(Rule.position > current, Rule.position <= target)
                        .values(position=Rule.position - 1))
    rule.position = target


def list_rules(session):
    return [rule_view(r) for r in session.scalars(select(Rule).order_by(Rule.position, Rule.id))]


def delete_rule(session, rule_id):
    rule = session.get(Rule, rule_id)
    if rule is None:
        raise errors.rule_not_found(rule_id)
    session.delete(rule)
    session.flush()
    session.execute(update(Rule).where(Rule.position > rule.position).values(position=Rule.position - 1))
    return {"deleted": rule_id}


_ACTIVE_RULES = (select(Rule.name, Rule.conditions, Rule.actions).where(Rule.enabled.is_(True))
                 .order_by(Rule.position, Rule.id))  # columns, not ORM objects: read for every new ticket


def active_rules(session):
    """The enabled routing rules, in the order they are tried."""
    return [RuleSpec(r.name, r.conditions or {}, r.actions or {}) for r in session.execute(_ACTIVE_RULES)]


# --- Claiming: the only ways load changes ---------------------------------------------------------

def claim_agent(session, agent_id, assignment_id, *, force=False):
    """Add one ticket to an agent's load if they are online and under capacity (always, when
    ``force``: a manual assignment). True when the agent took it."""
    query = update(Agent).where(Agent.id == agent_id)
    if not force:
        query = query.where(Agent.load < Agent.capacity, Agent.presence == "online")
    result = session.execute(query.values(load=Agent.load + 1, last_assignment_id=assignment_id),
                             execution_options={"synchronize_session": False})
    return result.rowcount == 1


def release_agent(session, agent_id):
    session.execute(update(Agent).where(Agent.id == agent_id, Agent.load > 0).values(load=Agent.load - 1),
                    execution_options={"synchronize_session": False})


def _candidate(agent):
    return Candidate(id=agent.id, tier=agent.tier, load=agent.load, capacity=agent.capacity,
                     presence=agent.presence, skills=agent.skills or {}, languages=agent.languages or [],
                     last_assignment_id=agent.last_assignment_id or 0,
                     working_hours=Calendar.from_dict(agent.working_hours) if agent.working_hours else None)


def _candidates(session, team, tier):
    """Online agents of ``team`` and ``tier`` under capacity (the rest of eligibility in Python)."""
    rows = session.execute(
        select(Agent.id, Agent.tier, Agent.load, Agent.capacity, Agent.presence, Agent.skills, Agent.languages,
               Agent.last_assignment_id, Agent.working_hours)
        .join(AgentTeam, AgentTeam.agent_id == Agent.id)
        .where(AgentTeam.team == team, Agent.tier == tier, Agent.presence == "online",
               Agent.load < Agent.capacity)).all()
    return [_candidate(row) for row in rows]


def _take(session, routed, agent_id, ctx, reason, *, manual=False, force=False, rule=None):
    """Claim ``agent_id`` for ``routed`` and record it; None when the agent could not take it."""
    assignment = Assignment(ticket_number=routed.number, agent_id=agent_id, team=routed.team, tier=routed.tier,
                            at=ctx.now, reason=reason[:500], actor=ctx.actor, manual=manual)
    session.add(assignment)
    session.flush()  # its id (a database sequence) is the agent's new round-robin position
    if not claim_agent(session, agent_id, assignment.id, force=force):
        session.delete(assignment)
        session.flush()
        return None
    return assignment


def _assigned(session, routed, assignment, ctx, *, previous=None):
    routed.outside_assignee = None
    agent = session.get(Agent, assignment.agent_id)
    _announce_assignee(session, routed, ctx, assignee_ref(agent.id), agent, assignment.reason, assignment.manual,
                       assignment.at, previous)


def _announce_assignee(session, routed, ctx, assignee, agent, reason, manual, at, previous):
    """``ticket_assigned``: ``assignee`` (``agent``: one of routing's agents, or None for a name set by hand
    that routing does not know) has ``routed``, placed where it now is."""
    _decide(session, routed, ctx, "ticket_assigned", {
        "ticket_number": routed.number, "assignee": assignee,
        "agent": {"id": agent.id, "name": agent.name, "email": agent.email, "assignee": assignee} if agent else None,
        "team": routed.team, "tier": routed.tier, "priority": routed.priority, "language": routed.language,
        "reason": reason, "rule": routed.rule, "manual": manual,
        "previous_assignee": assignee_ref(previous) if previous else None, "assigned_at": iso(at),
    })


def _queued(session, routed, ctx, reason, *, previous=None):
    routed.outside_assignee = None
    _decide(session, routed, ctx, "ticket_queued", {
        "ticket_number": routed.number, "team": routed.team, "tier": routed.tier, "priority": routed.priority,
        "language": routed.language, "required_skills": routed.required_skills, "reason": reason,
        "rule": routed.rule, "previous_assignee": assignee_ref(previous) if previous else None,
        "queued_at": iso(routed.queued_at or ctx.now),
    })


def _assign_from_team(session, routed, ctx, reason, *, previous=None):
    """Give a queued ticket (``routed``, locked or freshly inserted by this transaction) to the best
    free agent of its team and tier. Returns the assignment, or None (the ticket stays queued)."""
    team = session.get(Team, routed.team) if routed.team else None
    if team is None:
        return None
    ranked = ranked_agents(_candidates(session, team.name, routed.tier), tier=routed.tier,
                           required_skills=routed.required_skills or {}, language=routed.language,
                           strategy=team.strategy, now=ctx.now)
    for candidate in ranked:  # the best may have been taken by another replica a moment ago: next
        assignment = _take(session, routed, candidate.id, ctx, reason, rule=routed.rule)
        if assignment is not None:
            routed.state, routed.agent_id, routed.queued_at, routed.updated_at = "assigned", candidate.id, None, ctx.now
            session.flush()
            _assigned(session, routed, assignment, ctx, previous=previous)
            return assignment
    return None


# --- Tickets arriving and changing ----------------------------------------------------------------

def _lock_queued(session, number):
    """Lock one queued ticket for this transaction, or say it is not available.

    On PostgreSQL ``FOR UPDATE SKIP LOCKED`` on that one row: a ticket another replica is taking right
    now is skipped, not waited for (no deadlock, no stall), while the rest of the queue stays visible
    in priority order (locking a whole page would hide its urgent tickets from the other replicas).
    On SQLite the transaction holds the database's write lock already.
    """
    if not _is_postgres(session):
        return True
    return session.scalar(select(RoutedTicket.number).where(RoutedTicket.number == number,
                                                            RoutedTicket.state == "queued")
                          .with_for_update(skip_locked=True)) is not None


def drain_for_agent(session, agent_id, ctx, limit=None, keep_away=None):
    """Give waiting tickets of the agent's teams and tier to ``agent_id`` while they have room, most
    urgent first, then oldest (``keep_away``: a ticket just taken from them by hand). Returns how many
    they took."""
    agent = session.get(Agent, agent_id)
    session.refresh(agent)  # the load as committed now, not as this session first read it
    candidate = _candidate(agent)
    teams = {t.name: t.strategy for t in session.scalars(
        select(Team).join(AgentTeam, AgentTeam.team == Team.name).where(AgentTeam.agent_id == agent_id))}
    if not teams or not eligible(candidate, tier=agent.tier, required_skills={}, language=None,
                                 strategy="least_loaded", now=ctx.now):
        return 0
    free = agent.capacity - agent.load if limit is None else min(limit, agent.capacity - agent.load)
    taken, skipped, seen = 0, 0, 0
    while taken < free and seen < QUEUE_SCAN_LIMIT:
        # Taken rows leave the queue; only the skipped ones (not for this agent) stay ahead of the next page.
        query = (select(RoutedTicket).where(RoutedTicket.state == "queued", RoutedTicket.team.in_(list(teams)),
                                            RoutedTicket.tier == agent.tier, RoutedTicket.number != (keep_away or ""))
                 .order_by(RoutedTicket.priority_rank, RoutedTicket.created_at, RoutedTicket.number)
                 .offset(skipped).limit(QUEUE_PAGE))
        page = list(session.scalars(query))
        seen += len(page)
        for routed in page:
            if taken >= free:
                break
            if not eligible(candidate, tier=routed.tier, required_skills=routed.required_skills or {},
                            language=routed.language, strategy=teams[routed.team], now=ctx.now):
                skipped += 1
                continue
            if not _lock_queued(session, routed.number):
                continue  # another replica is taking it right now
            claimed = session.execute(
                update(RoutedTicket).where(RoutedTicket.number == routed.number, RoutedTicket.state == "queued")
                .values(state="assigned", agent_id=agent_id, queued_at=None, updated_at=ctx.now),
                execution_options={"synchronize_session": False}).rowcount == 1
            if not claimed:
                continue
            assignment = _take(session, routed, agent_id, ctx, "from the team queue")
            if assignment is None:  # the agent filled up meanwhile (another replica): put it back
                session.execute(update(RoutedTicket).where(RoutedTicket.number == routed.number)
                                .values(state="queued", agent_id=None, queued_at=routed.queued_at),
                                execution_options={"synchronize_session": False})
                return taken
            session.refresh(routed)
            _assigned(session, routed, assignment, ctx)
            taken += 1
            candidate.load += 1
        if len(page) < QUEUE_PAGE:
            break
    return taken


def sweep_team(session, team, ctx, limit=200):
    """Try to assign waiting tickets of ``team`` (a periodic safety net: working hours that began,
    races lost to another replica). Returns how many were assigned."""
    query = (select(RoutedTicket).where(RoutedTicket.state == "queued", RoutedTicket.team == team.name)
             .order_by(RoutedTicket.priority_rank, RoutedTicket.created_at, RoutedTicket.number).limit(limit))
    assigned = 0
    for routed in list(session.scalars(query)):
        if not _lock_queued(session, routed.number):
            continue
        session.refresh(routed)
        if routed.state == "queued" and _assign_from_team(session, routed, ctx, "from the team queue") is not None:
            assigned += 1
    return assigned


def sweep_all(session, ctx):
    teams = list(session.scalars(select(Team).where(Team.name.in_(
        select(RoutedTicket.team).where(RoutedTicket.state == "queued").distinct()))))
    return sum(sweep_team(session, team, ctx) for team in teams)


def _release(session, routed, ctx):
    """End the current agent's work on ``routed``; returns the agent id freed (or None)."""
    agent_id = routed.agent_id
    if routed.state == "assigned" and agent_id is not None:
        release_agent(session, agent_id)
    return agent_id


REACTS_TO = frozenset({"status", "priority"})


def reacts_to(data):
    """Whether a ``ticket_updated`` can move anything in routing: a status or a priority change. Assignee,
    team and tier are routing's own decisions (the tickets service only applies them), so a change of
    those alone is routing's decision coming back, with nothing to learn from it."""
    return bool(REACTS_TO & {change["field"] for change in data.get("changes") or []})


def ticket_changed(session, ticket, changes, settings, ctx):
    """React to ``ticket_updated``: a closing status frees the agent (who takes the next waiting
    ticket), a reopening brings the ticket back (escalating after repeated reopening), a priority
    raised to urgent escalates."""
    number = ticket["number"]
    fields = {change["field"]: change for change in changes}
    query = select(RoutedTicket).where(RoutedTicket.number == number)
    routed = session.scalars(query.with_for_update() if _is_postgres(session) else query).first()
    status = ticket.get("status")
    if routed is None:
        if status in settings.release_statuses:
            # ticket_created has not arrived yet (events of one ticket may overtake each other): leave a
            # tombstone so that it does not route a finished ticket.
            session.add(RoutedTicket(number=number, state="released", team=ticket.get("team"),
                                     tier=ticket.get("tier") or 1, priority=ticket.get("priority") or "normal",
                                     priority_rank=-PRIORITY_RANK.get(ticket.get("priority"), 1), status=status,
                                     created_at=ctx.now, updated_at=ctx.now))
        return None
    if "status" in fields:
        routed.status = status
        if status in settings.release_statuses and routed.state != "released":
            freed = _release(session, routed, ctx)
            routed.state, routed.queued_at, routed.updated_at = "released", None, ctx.now
            session.flush()
            if freed is not None:
                drain_for_agent(session, freed, ctx)
            return "released"
        if status not in settings.release_statuses and routed.state == "released":
            return _reopened(session, routed, settings, ctx)
    if "priority" in fields and ticket.get("priority") != routed.priority:
        routed.priority = ticket["priority"]
        routed.priority_rank = -PRIORITY_RANK.get(routed.priority, 1)
        if routed.priority == "urgent" and settings.escalate_on_urgent and routed.state != "released":
            escalate(session, number, "priority raised to urgent", "urgent_priority", ctx)
            return "escalated"
    return None


def _reopened(session, routed, settings, ctx):
    routed.reopen_count += 1
    previous = routed.agent_id
    routed.state, routed.agent_id, routed.queued_at, routed.updated_at = "queued", None, ctx.now, ctx.now
    session.flush()
    if settings.escalate_after_reopens and routed.reopen_count >= settings.escalate_after_reopens:
        escalate(session, routed.number, f"reopened {routed.reopen_count} times", "reopened", ctx)
        return "escalated"
    # back to the agent who had it, if they can take it; else the team
    if previous is not None and session.get(Agent, previous) is not None:
        assignment = _take(session, routed, previous, ctx, "reopened: back to the previous agent")
        if assignment is not None:
            routed.state, routed.agent_id, routed.queued_at = "assigned", previous, None
            session.flush()
            _assigned(session, routed, assignment, ctx)
            return "assigned"
    if _assign_from_team(session, routed, ctx, "reopened", previous=previous) is None:
        _queued(session, routed, ctx, "reopened; no agent free", previous=previous)
        return "queued"
    return "assigned"


def assign_manually(session, number, agent_id, reason, ctx, viewer=None):
    """An agent or supervisor gives the ticket to ``agent_id``, whatever their load (recorded). With
    ``viewer``: only a ticket routing holds in one of their teams (or in none)."""
    routed = find_routed(session, number, lock=True, viewer=viewer)
    agent = find_agent(session, agent_id)
    if routed.state == "assigned" and routed.agent_id == agent.id:
        return routed_view(routed)
    previous = routed.agent_id if routed.state == "assigned" else None
    freed = _release(session, routed, ctx)
    assignment = _take(session, routed, agent.id, ctx, f"manual: {reason}", manual=True, force=True)
    routed.state, routed.agent_id, routed.queued_at, routed.updated_at = "assigned", agent.id, None, ctx.now
    session.flush()
    _assigned(session, routed, assignment, ctx, previous=previous)
    if freed is not None:
        drain_for_agent(session, freed, ctx)
    return routed_view(routed)


ROUTED_FIELDS = ("assignee", "team", "tier")
"""A ticket's fields that routing alone decides; the tickets service applies its decisions."""


def _routed_from_ticket(session, number, ticket, ctx):
    """Routing's record of a ticket it has not routed yet (a person set its assignee, team or tier before
    routing's ``ticket_created`` arrived): made from the ticket as it is, so that event finds it seen and
    leaves it alone (the person's decision came first)."""
    if ticket is None:
        raise errors.ticket_not_found(number)
    priority = ticket.get("priority") or "normal"
    created = ticket.get("created_at")
    routed = RoutedTicket(number=ticket["number"], state="queued", team=ticket.get("team"), tier=ticket.get("tier") or 1,
                          priority=priority, priority_rank=-PRIORITY_RANK.get(priority, 1),
                          language=ticket.get("language"), required_skills={}, status=ticket.get("status"),
                          reopen_count=0, decisions=0,
                          created_at=datetime.fromisoformat(created) if isinstance(created, str) else (created or ctx.now),
                          queued_at=ctx.now, updated_at=ctx.now)
    session.add(routed)
    session.flush()  # routing's own first delivery of ticket_created, at the same moment, fails here: rerun
    return routed


def route_by_hand(session, number, changes, ticket, ctx, viewer=None):
    """A person sets a ticket's assignee, team or tier (``changes``: the fields given, as in a ticket PATCH;
    ``ticket``: the ticket's view, for a ticket routing has not seen yet). Carried out as routing's decision,
    announced like any other, so that one writer decides these fields:

    - an ``assignee`` that is one of routing's agents takes the ticket whatever their load (as
      :func:`assign_manually`); any other name is recorded as it is (no load, no capacity);
    - ``assignee`` null puts the ticket back in its team's queue (assigned at the next sweep or as soon as
      an agent frees up, not in this decision: the person just took it away from someone);
    - ``team`` and ``tier`` move the ticket; without ``assignee`` its agent keeps it, and a waiting ticket
      waits in its new queue (or goes to a free agent there);
    - a resolved or closed ticket records the change and holds no agent's load.

    With ``viewer``: only on a ticket they may act on, judged by where routing holds it before the change
    (the tickets service checked the same by its own record). Returns the routing view; the decisions are
    in ``ctx.decided``."""
    query = select(RoutedTicket).where(RoutedTicket.number == number)
    routed = session.scalars(query.with_for_update() if _is_postgres(session) else query).first()
    if routed is None:
        if viewer is not None and ticket is not None and not access.may_see_team(viewer, ticket.get("team")):
            raise errors.ticket_not_found(number)
        routed = _routed_from_ticket(session, number, ticket, ctx)
    elif viewer is not None:
        access.check_ticket(viewer, routed, number)
    reason = f"set by hand ({', '.join(f for f in ROUTED_FIELDS if f in changes)})"
    if "team" in changes:
        routed.team = changes["team"]
    if "tier" in changes:
        routed.tier = changes["tier"]
    holder = routed.agent_id if routed.state == "assigned" else None
    if "assignee" in changes:
        target = changes["assignee"]
    elif routed.state == "assigned":
        target = assignee_ref(routed.agent_id) if routed.agent_id else routed.outside_assignee
    else:
        target = None
    agent_id = agent_id_of(target)
    agent = session.get(Agent, agent_id) if agent_id is not None else None
    routed.updated_at = ctx.now

    if routed.state == "released":  # finished: who and where are recorded, nobody's load changes
        routed.agent_id, routed.outside_assignee = (agent.id, None) if agent else (None, target)
        session.flush()
        _announce_by_hand(session, routed, agent, target, ctx, reason, previous=holder)
        return routed_view(routed)
    if target is None:
        freed = _release(session, routed, ctx)
        routed.state, routed.agent_id = "queued", None
        routed.queued_at = routed.queued_at if holder is None and routed.queued_at else ctx.now
        session.flush()
        if "assignee" in changes or _assign_from_team(session, routed, ctx, reason, previous=holder) is None:
            _queued(session, routed, ctx, reason, previous=holder)
        if freed is not None:
            drain_for_agent(session, freed, ctx, keep_away=number)
        return routed_view(routed)
    if agent is not None and agent.id == holder:  # the same agent, in a new team or tier: no new load
        routed.outside_assignee = None
        session.flush()
        _announce_by_hand(session, routed, agent, target, ctx, reason, previous=holder)
        return routed_view(routed)
    freed = _release(session, routed, ctx)
    routed.state, routed.queued_at = "assigned", None
    if agent is not None:
        assignment = _take(session, routed, agent.id, ctx, reason, manual=True, force=True)
        routed.agent_id = agent.id
        session.flush()
        _assigned(session, routed, assignment, ctx, previous=holder)
    else:
        routed.agent_id, routed.outside_assignee = None, target
        session.flush()
        _announce_by_hand(session, routed, None, target, ctx, reason, previous=holder)
    if freed is not None:
        drain_for_agent(session, freed, ctx)
    return routed_view(routed)


def _announce_by_hand(session, routed, agent, target, ctx, reason, *, previous=None):
    """``ticket_assigned`` (``target`` set: an agent, or a name routing does not know) or ``ticket_queued``
    (nobody) for a decision made by hand that took no agent's load."""
    if target is None:
        _queued(session, routed, ctx, reason, previous=previous)
    else:
        _announce_assignee(session, routed, ctx, target, agent, reason, True, ctx.now, previous)


def escalate(session, number, reason, trigger, ctx, to_team=None, viewer=None):
    """Move a ticket up its escalation path: to ``to_team``, to its team's ``escalates_to``, or to the
    next tier of the same team; then assign it there or queue it.

    With ``viewer`` (a person, by hand): only a ticket they may act on now, judged by where routing holds
    it before the move, so nobody pulls another team's ticket into their own to read it. Escalating out
    of one's own team to any team is the point of escalation and stays allowed."""
    routed = find_routed(session, number, lock=True, viewer=viewer)
    if routed.state == "released":
        raise errors.ticket_closed(number)
    team = session.get(Team, routed.team) if routed.team else None
    if to_team is not None:
        target = find_team(session, to_team)
        new_team, new_tier = target.name, max(target.tier, routed.tier)
    elif team is not None and team.escalates_to:
        target = find_team(session, team.escalates_to)
        new_team, new_tier = target.name, max(target.tier, routed.tier + 1)
    else:
        new_team, new_tier = routed.team, routed.tier + 1
    if new_tier > MAX_TIER:
        raise errors.no_escalation_path(number)
    previous = routed.agent_id if routed.state == "assigned" else None
    freed = _release(session, routed, ctx)
    from_team, from_tier = routed.team, routed.tier
    routed.team, routed.tier, routed.state, routed.agent_id = new_team, new_tier, "queued", None
    routed.queued_at, routed.updated_at = ctx.now, ctx.now
    session.add(EscalationRecord(ticket_number=number, from_team=from_team, to_team=new_team, from_tier=from_tier,
                                 to_tier=new_tier, trigger=trigger, reason=reason[:500], actor=ctx.actor, at=ctx.now))
    session.flush()
    _decide(session, routed, ctx, "ticket_escalated", {
        "ticket_number": number, "from_team": from_team, "to_team": new_team, "from_tier": from_tier,
        "to_tier": new_tier, "trigger": trigger, "reason": reason, "escalated_at": iso(ctx.now),
    })
    if _assign_from_team(session, routed, ctx, f"escalated ({trigger})", previous=previous) is None:
        _queued(session, routed, ctx, f"escalated ({trigger}); no agent free", previous=previous)
    if freed is not None:
        drain_for_agent(session, freed, ctx)
    return routed_view(routed)


def sla_breached(session, data, settings, ctx):
    """Escalate on an SLA breach, once per breach episode.

    A ticket whose first-response and resolution clocks both breach (or a breach announced again) is
    escalated once: when the ticket's latest escalation was for an SLA breach and it still sits where
    that escalation put it, the new breach belongs to the same episode and changes nothing. A new
    placement (another escalation, by hand or by rule) starts a new episode. The ticket's row is locked
    first (PostgreSQL; SQLite serialises writers), so two replicas handling both breaches at once agree.
    """
    if not settings.escalate_on_sla_breach:
        return None
    routed = session.scalars(select(RoutedTicket).where(RoutedTicket.number == data["ticket_number"])
                             .with_for_update()).first()
    if routed is None or routed.state == "released" or routed.tier >= MAX_TIER:
        return None
    last = session.scalars(select(EscalationRecord).where(EscalationRecord.ticket_number == routed.number)
                           .order_by(EscalationRecord.id.desc()).limit(1)).first()
    if last is not None and last.trigger == "sla_breach" and (last.to_team, last.to_tier) == (routed.team, routed.tier):
        return None  # the same breach episode: escalated already
    return escalate(session, routed.number, f"SLA {data['metric']} breached", "sla_breach", ctx)


def routing_of(session, number, viewer=None):
    """Where a ticket stands in routing, with every assignment and escalation (with ``viewer``: only a
    ticket they may act on)."""
    routed = find_routed(session, number, viewer=viewer)
    assignments = session.scalars(select(Assignment).where(Assignment.ticket_number == number).order_by(Assignment.id))
    escalations = session.scalars(select(EscalationRecord).where(EscalationRecord.ticket_number == number)
                                  .order_by(EscalationRecord.id))
    return {**routed_view(routed), "assignments": [assignment_view(a) for a in assignments],
            "escalations": [{"from_team": e.from_team, "to_team": e.to_team, "from_tier": e.from_tier,
                             "to_tier": e.to_tier, "trigger": e.trigger, "reason": e.reason, "actor": e.actor,
                             "at": iso(e.at)} for e in escalations]}


def queue(session, team=None, limit=100, viewer=None):
    """Waiting tickets, most urgent first, then oldest; ``team`` filters. With ``viewer``: only the queues
    they may list (``access.queue_teams``: a team-limited agent's own teams and the untriaged tickets)."""
    query = (select(RoutedTicket).where(RoutedTicket.state == "queued")
             .order_by(RoutedTicket.priority_rank, RoutedTicket.created_at, RoutedTicket.number).limit(limit))
    teams = (team,) if team else None
    if viewer is not None:
        teams = access.queue_teams(viewer, team or None)
    if teams is not None:
        named = [t for t in teams if t is not None]
        condition = RoutedTicket.team.in_(named)  # an empty list: nothing
        if None in teams:
            condition = condition | RoutedTicket.team.is_(None)
        query = query.where(condition)
    return [routed_view(r) for r in session.scalars(query)]

