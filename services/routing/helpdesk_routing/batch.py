"""Routing new tickets: the one path that decides a new ticket's team, tier, skills and priority by the
rules, then assigns it or queues it, for many tickets in one transaction (a lone ticket is a batch of one:
:func:`route_new_ticket`). Plain functions of a SQLAlchemy session; no nameko in here.

One commit per decision caps routing at what the database commits per second; a batch pays for one
commit, reads rules, teams and candidate agents once, writes every row with ``executemany``, and picks
agents from in-memory heaps instead of ranking every candidate per ticket.

Correct under concurrency (several replicas, one database), like the single path:

- The candidate agents (the best-ranked few of each team, or the whole team when those cannot tell)
  are locked and read again (``SELECT ... ORDER BY id FOR UPDATE`` on PostgreSQL, in id order so two
  replicas cannot deadlock on them; SQLite's ``BEGIN IMMEDIATE`` holds the database's write lock
  already). Their loads are therefore the committed truth until this
  transaction ends, and the selection never takes an agent past capacity. The load UPDATE still says
  ``load + n <= capacity``; a count that disagrees aborts the whole batch.
- A ticket routed already (an earlier delivery, a tombstone, a twin in the same batch) is skipped; a
  concurrent first delivery of the same ticket by another replica fails on the primary key of
  ``routed_tickets`` and the whole batch is rerun (the caller's ``_write``), when it is skipped.
"""
import heapq
import json
from datetime import datetime
from types import SimpleNamespace

from sqlalchemy import bindparam, select, text, update

from helpdesk_common.business_hours import Calendar, is_open
from helpdesk_common.bulk import allocate_ids, insert_rows
from helpdesk_common.contracts.routing import assignee_ref
from helpdesk_common.events import new_event
from helpdesk_common.outbox import stage_many

from .domain import active_rules, iso, routed_view
from .models import Agent, AgentTeam, Assignment, Outbox, RoutedTicket, Team
from .rules import PRIORITY_RANK, Candidate, decide, has_skills, rank_key, speaks


class LoadMismatch(RuntimeError):
    """The database refused a load the selection computed: never expected; the batch rolls back."""


def _created_at(ticket, now):
    value = ticket.get("created_at")
    return datetime.fromisoformat(value) if isinstance(value, str) else (value or now)


class _Pool:
    """The free agents of the batch's teams, each once (an agent in two teams has one load), and one
    heap per kind of ticket (team, tier, strategy, skills, language), built when first needed.

    Heap entries are ``(rank key, agent id)``. A key only grows (load up, a newer round-robin position),
    so an entry is at worst stale-low: when it comes up its agent's current key is compared and the
    entry pushed back with the true key; full agents drop out.
    """

    def __init__(self, agents, teams_of, strategies, boundaries=None):
        self.agents = agents  # id -> Candidate
        self.teams_of = teams_of  # team -> [agent ids]
        self.strategies = strategies  # team -> strategy
        # (team, tier) -> rank key of the last agent read, when the read stopped before the end of the team
        self.boundaries = boundaries or {}
        self.heaps = {}
        self.next_position = max((a.last_assignment_id for a in agents.values()), default=0) + 1

    def _heap(self, team, tier, skills, language):
        strategy = self.strategies[team]
        if strategy != "skills_and_load":
            skills, language = (), None  # only skills_and_load matches on them
        key = (team, tier, skills, language)
        heap = self.heaps.get(key)
        if heap is None:
            wanted = dict(skills)
            heap = [(rank_key(a, strategy), a.id) for a in (self.agents[i] for i in self.teams_of.get(team, ()))
                    if a.tier == tier and a.load < a.capacity
                    and (strategy != "skills_and_load" or (has_skills(a, wanted) and speaks(a, language)))]
            heapq.heapify(heap)
            self.heaps[key] = heap
        return heap, strategy

    def take(self, team, tier, required_skills, language):
        """The best free agent for such a ticket, counted as taken; None when nobody is free.

        Raises :class:`_Unsure` when only the best few agents of the team were read and they cannot
        tell: everyone unread ranks after the boundary, so a pick at or before it is the true best.
        """
        heap, strategy = self._heap(team, tier, tuple(sorted((required_skills or {}).items())), language)
        boundary = self.boundaries.get((team, tier))
        while heap:
            key, agent_id = heap[0]
            agent = self.agents[agent_id]
            if agent.load >= agent.capacity:
                heapq.heappop(heap)
                continue
            current = rank_key(agent, strategy)
            if current != key:
                heapq.heapreplace(heap, (current, agent_id))
                continue
            if boundary is not None and current > boundary:
                raise _Unsure()
            agent.load += 1
            agent.last_assignment_id = self.next_position  # newer than any before: the back of the rotation
            self.next_position += 1
            heapq.heapreplace(heap, (rank_key(agent, strategy), agent_id))
            return agent
        if boundary is not None:
            raise _Unsure()
        return None


class _Unsure(Exception):
    """The best few agents read could not answer for a ticket: read the whole team."""


# How many of a team's best-ranked free agents a batch reads first: enough for most tickets to find
# theirs among them (a lone ticket reads a handful of rows instead of the whole team).
CANDIDATES_PER_TICKET = 2
CANDIDATES_MIN = 4
SMALL_BATCH = 16


# An agent's profile (name, email, skills, languages, working hours) changes only with ``updated_at``
# (every profile and presence change sets it; a load change does not), so a batch reads the small
# columns of every free agent and decodes the JSON of those it has not seen in that version yet.
_PROFILES = {}
_PROFILES_MAX = 100_000


def _load_profiles(session, database, rows):
    """Read and decode the profiles of ``rows`` (id, updated_at) not cached in that version yet."""
    missing = {row.id: row.updated_at for row in rows if (database, row.id, row.updated_at) not in _PROFILES}
    # (an agent in two of the teams comes twice: the dict keeps one)
    if not missing:
        return
    if len(_PROFILES) + len(missing) > _PROFILES_MAX:
        _PROFILES.clear()
    for row in session.execute(select(Agent.id, Agent.name, Agent.email, Agent.skills, Agent.languages,
                                      Agent.working_hours).where(Agent.id.in_(sorted(missing)))):
        calendar = Calendar.from_dict(row.working_hours) if row.working_hours else None
        _PROFILES[(database, row.id, missing[row.id])] = (row.name, row.email, row.skills or {},
                                                          row.languages or [], calendar)


def _order(strategy):
    """The database order of :func:`rules.rank_key` for ``strategy``, best first."""
    if strategy == "round_robin":
        return (Agent.last_assignment_id, Agent.id)
    return (Agent.load, Agent.last_assignment_id, Agent.id)


def _free_agents(session, groups, strategies, now, limited):
    """Online agents under capacity and within working hours for each (team, tier) of ``groups``
    (-> tickets), their rows locked for this transaction on PostgreSQL (in id order, so replicas
    cannot deadlock on them). ``limited``: only the best-ranked few per group.

    Returns (id -> Candidate, id -> (name, email), team -> [ids], (team, tier) -> boundary key).
    """
    rows, boundaries = [], {}
    query = (select(AgentTeam.team, Agent.id, Agent.tier, Agent.load, Agent.capacity, Agent.last_assignment_id,
                    Agent.updated_at).join(Agent, Agent.id == AgentTeam.agent_id)
             .where(Agent.presence == "online", Agent.load < Agent.capacity))
    if not limited:  # every free agent of the teams, in one query
        teams = sorted({team for team, _ in groups})
        rows = session.execute(query.where(AgentTeam.team.in_(teams))).all() if teams else []
    for (team, tier), count in sorted(groups.items()) if limited else ():
        limit = max(CANDIDATES_MIN, CANDIDATES_PER_TICKET * count)
        found = session.execute(query.where(AgentTeam.team == team, Agent.tier == tier)
                                .order_by(*_order(strategies[team])).limit(limit)).all()
        if len(found) == limit:
            last = found[-1]
            boundaries[(team, tier)] = rank_key(Candidate(id=last.id, tier=last.tier, load=last.load,
                                                          capacity=last.capacity,
                                                          last_assignment_id=last.last_assignment_id or 0),
                                                strategies[team])
        rows.extend(found)
    current = {}
    if rows and session.bind.dialect.name == "postgresql":
        # lock them and read their loads as committed now (a replica may have taken some meanwhile)
        current = {row.id: row for row in session.execute(
            select(Agent.id, Agent.load, Agent.capacity, Agent.last_assignment_id, Agent.presence)
            .where(Agent.id.in_(sorted({row.id for row in rows}))).order_by(Agent.id).with_for_update())}
    database = str(session.bind.url)
    _load_profiles(session, database, rows)
    agents, contact, teams_of = {}, {}, {}
    for row in rows:
        if row.id not in agents:
            now_row = current.get(row.id, row)
            if getattr(now_row, "presence", "online") != "online" or now_row.load >= now_row.capacity:
                agents[row.id] = None  # went offline or filled up since the first read
                continue
            name, email, skills, languages, calendar = _PROFILES[(database, row.id, row.updated_at)]
            if calendar is not None and not is_open(calendar, now):
                agents[row.id] = None  # outside their working hours
                continue
            agents[row.id] = Candidate(id=row.id, tier=row.tier, load=now_row.load, capacity=row.capacity,
                                       skills=skills, languages=languages,
                                       last_assignment_id=now_row.last_assignment_id or 0)
            contact[row.id] = (name, email)
        if agents[row.id] is not None and row.id not in teams_of.setdefault(row.team, []):
            teams_of[row.team].append(row.id)
    return {i: a for i, a in agents.items() if a is not None}, contact, teams_of, boundaries


_ADD_LOAD = text(
    "UPDATE agents SET load = agents.load + taken.n, last_assignment_id = taken.last "
    "FROM json_to_recordset(CAST(:taken AS json)) AS taken(agent BIGINT, n INTEGER, last BIGINT) "
    "WHERE agents.id = taken.agent AND agents.load + taken.n <= agents.capacity RETURNING agents.id")


def _add_load(session, taken, last):
    """Add ``taken[agent]`` tickets to each agent's load (never past capacity) and move their
    round-robin position to ``last[agent]``; raise :class:`LoadMismatch` if the database refuses one."""
    table = Agent.__table__
    if session.bind.dialect.name == "postgresql":
        # One statement for every agent, returning whom it accepted. The rows travel as one JSON
        # document: an UPDATE ... FROM VALUES with one bound literal per value is compiled afresh by
        # SQLAlchemy for every batch (that alone was a third of a batch's CPU time).
        accepted = len(set(session.scalars(_ADD_LOAD, {"taken": json.dumps(
            [{"agent": agent_id, "n": n, "last": last[agent_id]} for agent_id, n in taken.items()])})))
    else:  # SQLite has no VALUES with column names here; executemany is in-process and counts every row
        accepted = session.execute(
            update(table).where(table.c.id == bindparam("agent"), table.c.load + bindparam("n") <= table.c.capacity)
            .values(load=table.c.load + bindparam("n"), last_assignment_id=bindparam("last")),
            [{"agent": agent_id, "n": n, "last": last[agent_id]} for agent_id, n in taken.items()]).rowcount
    if accepted != len(taken):
        raise LoadMismatch(f"{len(taken)} agents' loads computed, {accepted} accepted")


_TEAMS = select(Team.name, Team.tier, Team.strategy)  # columns, not ORM objects: read for every batch


def route_new_tickets(session, tickets, settings, now, correlation_ids=None):
    """Route the new tickets ``tickets`` (``TicketView`` dicts of ``ticket_created``) in the caller's
    transaction, in order, deciding each as if the ones before it had been routed alone. Returns one result
    per ticket: its routing view, or None for a ticket routing had seen already (the first event wins)."""
    correlation_ids = correlation_ids or [None] * len(tickets)
    numbers = [t["number"] for t in tickets]
    seen = set(session.scalars(select(RoutedTicket.number).where(RoutedTicket.number.in_(numbers))))
    rules = active_rules(session)
    teams = {team.name: team for team in session.execute(_TEAMS)}
    decided = []
    for index, ticket in enumerate(tickets):
        if ticket["number"] in seen:
            continue
        seen.add(ticket["number"])
        decision = decide(rules, ticket, settings.default_team)
        team = teams.get(decision.team) if decision.team else None
        tier = decision.tier or (team.tier if team is not None else None) or ticket.get("tier") or 1
        decided.append((index, ticket, decision, team, tier))
    groups = {}
    for _, _, _, team, tier in decided:
        if team is not None:
            groups[(team.name, tier)] = groups.get((team.name, tier), 0) + 1
    strategies = {name: team.strategy for name, team in teams.items()}
    # A few tickets: the best few agents of each team first (a handful of rows), the whole team when
    # they cannot tell. Many tickets: the whole teams at once (one query beats one per team).
    for limited in ((True, False) if len(decided) <= SMALL_BATCH else (False,)):
        agents, contact, teams_of, boundaries = _free_agents(session, groups, strategies, now, limited)
        pool = _Pool(agents, teams_of, strategies, boundaries)
        try:
            chosen = [pool.take(team.name, tier, decision.required_skills, decision.language)
                      if team is not None else None for _, _, decision, team, tier in decided]
            break
        except _Unsure:
            continue

    rows, picks = [], []
    for (index, ticket, decision, team, tier), agent in zip(decided, chosen):
        rows.append({"number": ticket["number"], "state": "assigned" if agent else "queued",
                     "team": team.name if team is not None else decision.team, "tier": tier,
                     "priority": decision.priority, "priority_rank": -PRIORITY_RANK.get(decision.priority, 1),
                     "language": decision.language, "required_skills": decision.required_skills,
                     "rule": decision.rule, "agent_id": agent.id if agent else None, "status": ticket.get("status"),
                     "reopen_count": 0, "decisions": 1, "outside_assignee": None, "created_at": _created_at(ticket, now),
                     "queued_at": None if agent else now, "updated_at": now})
        picks.append(agent)
    if not rows:
        return [None] * len(tickets)
    insert_rows(session, RoutedTicket.__table__, rows)  # one statement, no ORM bookkeeping

    assigned = [(row, agent) for row, agent in zip(rows, picks) if agent is not None]
    if assigned:
        reasons = [f"rule {row['rule']}" if row["rule"] else "team queue" for row, _ in assigned]
        # ids drawn first, ascending in decision order, so the rows need no RETURNING (one statement)
        assignment_ids = allocate_ids(session, Assignment.__table__, len(assigned))
        insert_rows(session, Assignment.__table__, [
            {"id": assignment_id, "ticket_number": row["number"], "agent_id": agent.id, "team": row["team"],
             "tier": row["tier"], "at": now, "reason": reason[:500], "actor": "routing", "manual": False}
            for (row, agent), reason, assignment_id in zip(assigned, reasons, assignment_ids)])
        taken, last = {}, {}
        for (row, agent), assignment_id in zip(assigned, assignment_ids):
            taken[agent.id] = taken.get(agent.id, 0) + 1
            last[agent.id] = assignment_id  # ids grow in insert order: the last one is the newest
        _add_load(session, taken, last)

    envelopes, views = [], {}
    correlation_of = {t["number"]: c for t, c in zip(tickets, correlation_ids)}
    for row, agent in zip(rows, picks):
        number = row["number"]
        if agent is not None:
            name, email = contact[agent.id]
            ref = assignee_ref(agent.id)
            data = {"ticket_number": number, "assignee": ref,
                    "agent": {"id": agent.id, "name": name, "email": email, "assignee": ref},
                    "team": row["team"], "tier": row["tier"], "priority": row["priority"],
                    "language": row["language"], "reason": f"rule {row['rule']}" if row["rule"] else "team queue",
                    "rule": row["rule"], "manual": False, "previous_assignee": None, "assigned_at": iso(now),
                    "sequence": 1, "actor": "routing"}
            envelopes.append(new_event("ticket_assigned", data, correlation_id=correlation_of[number], subject=number))
        else:
            if row["team"] is None:
                reason = "no team decided"
            elif row["team"] not in teams:
                reason = f"unknown team {row['team']}"
            else:
                reason = "no agent free"
            data = {"ticket_number": number, "team": row["team"], "tier": row["tier"], "priority": row["priority"],
                    "language": row["language"], "required_skills": row["required_skills"], "reason": reason,
                    "rule": row["rule"], "previous_assignee": None, "queued_at": iso(now), "sequence": 1,
                    "actor": "routing"}
            envelopes.append(new_event("ticket_queued", data, correlation_id=correlation_of[number], subject=number))
        views[number] = routed_view(SimpleNamespace(**row))
    stage_many(session, Outbox, envelopes)
    results, given = [], set()
    for ticket in tickets:  # a twin in the batch is "seen already", like a second delivery
        number = ticket["number"]
        results.append(views.get(number) if number not in given else None)
        given.add(number)
    return results


def route_new_ticket(session, ticket, settings, now, correlation_id=None):
    """Route one new ticket: a batch of one (one path decides every new ticket)."""
    return route_new_tickets(session, [ticket], settings, now, [correlation_id])[0]
