"""Routing new tickets in batches (one transaction) decides exactly what routing them one by one does."""
import random
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from helpdesk_common.inbox import first_deliveries
from helpdesk_common.contracts.routing import NewAgent, NewRule, NewTeam
from helpdesk_common.adapters.database import engine_for
from helpdesk_routing import batch, domain
from helpdesk_routing.migrate import upgrade
from helpdesk_routing.models import Agent, Assignment, Outbox, ProcessedEvent, RoutedTicket


MONDAY_NOON = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)  # as in conftest
CLOSED_NOW = {"timezone": "UTC", "weekly": {"sat": ["09:00-17:00"]}}  # Monday noon: outside their hours
SUBJECTS = [("VPN down", "Mijn VPN werkt niet, kunnen jullie helpen?"), ("VPN", "Min VPN fungerar inte sedan i morse"),
            ("Invoice twice", "I was charged twice for my invoice"), ("Printer", "The printer does not print."),
            ("Wifi", "The wifi drops every hour")]


def desk(tmp_path, name, url=None):
    """A routing database with teams of each strategy, rules, and agents of different skills, languages,
    capacities, presence and working hours (a SQLite file, unless ``url`` names another database)."""
    url = url or f"sqlite:///{tmp_path / name}"
    upgrade(url)
    sessions = sessionmaker(engine_for(url), expire_on_commit=False)
    ctx = domain.Context(now=MONDAY_NOON)
    with sessions.begin() as s:
        for team, strategy in (("network", "skills_and_load"), ("billing", "least_loaded"), ("desk", "round_robin")):
            domain.create_team(s, NewTeam(name=team, strategy=strategy))
        for rule, conditions, actions in (
                ("vpn", {"words": ["vpn"]}, {"team": "network", "required_skills": {"vpn": 2}, "priority": "high"}),
                ("billing", {"words": ["invoice"]}, {"team": "billing"}),
                ("wifi", {"words": ["wifi"]}, {"team": "network", "required_skills": {"wifi": 1}})):
            domain.add_rule(s, NewRule.model_validate({"name": rule, "conditions": conditions, "actions": actions}))
        agents = [("Eva", ["sv", "en"], {"vpn": 4, "wifi": 2}, ["network"], 3, "online", None),
                  ("Jan", ["nl"], {"vpn": 2}, ["network", "desk"], 2, "online", None),
                  ("Kim", ["en"], {"wifi": 1}, ["network"], 4, "online", None),
                  ("Ola", ["sv"], {"vpn": 5}, ["network"], 5, "online", CLOSED_NOW),
                  ("Bob", ["en"], {}, ["billing", "desk"], 3, "online", None),
                  ("Ann", [], {}, ["billing"], 2, "online", None),
                  ("Zoe", ["en"], {"vpn": 5}, ["network", "billing"], 9, "offline", None),
                  ("Max", ["en"], {}, ["desk"], 4, "online", None)]
        for name, languages, skills, teams, capacity, presence, hours in agents:
            domain.create_agent(s, NewAgent.model_validate({
                "name": name, "email": f"{name.lower()}@example.com", "languages": languages, "skills": skills,
                "teams": teams, "capacity": capacity, "presence": presence, "working_hours": hours}), ctx)
    return sessions


def tickets(_ticket, count, seed=5):
    rng = random.Random(seed)
    made = []
    for n in range(count):
        subject, description = rng.choice(SUBJECTS)
        made.append(_ticket(number=f"B-{n:04d}", subject=subject, description=description, language=None,
                            team=rng.choice([None, "desk", "billing", "nowhere"]),
                            priority=rng.choice(["normal", "high", "low"])))
    return made


def outcome(sessions):
    with sessions() as s:
        routed = {r.number: (r.state, r.agent_id, r.team, r.tier, r.language, r.priority, r.rule, r.required_skills)
                  for r in s.scalars(select(RoutedTicket))}
        loads = {a.name: (a.load, a.last_assignment_id > 0) for a in s.scalars(select(Agent))}
        events = [(e.event_type, e.envelope["data"]["ticket_number"], e.envelope["data"].get("assignee"),
                   e.envelope["data"]["reason"]) for e in s.scalars(select(Outbox).order_by(Outbox.seq))
                  if e.event_type in ("ticket_assigned", "ticket_queued")]
    return routed, loads, events


@pytest.mark.parametrize("per_ticket, minimum, small", [(2, 4, 0), (2, 4, 100), (0, 1, 100), (0, 2, 100), (1, 1, 100)])
def test_a_batch_decides_what_one_by_one_decides(tmp_path, ticket, monkeypatch, per_ticket, minimum, small):
    """Also when it reads only the best one or two agents of a team first (and must read the rest)."""
    monkeypatch.setattr(batch, "CANDIDATES_PER_TICKET", per_ticket)
    monkeypatch.setattr(batch, "CANDIDATES_MIN", minimum)
    monkeypatch.setattr(batch, "SMALL_BATCH", small)  # 0: whole teams at once; 100: the best few first
    assert_same_decisions(desk(tmp_path, "one.db"), desk(tmp_path, "many.db"), ticket)


@pytest.mark.postgres
@pytest.mark.parametrize("small", [0, 100])
def test_a_batch_decides_what_one_by_one_decides_on_postgresql(tmp_path, ticket, monkeypatch, small,
                                                               postgres_database):
    """PostgreSQL writes a batch's rows and loads with statements of its own (helpdesk_common.bulk)."""
    monkeypatch.setattr(batch, "SMALL_BATCH", small)
    assert_same_decisions(desk(tmp_path, None, postgres_database()), desk(tmp_path, None, postgres_database()),
                          ticket)


def assert_same_decisions(one, many, ticket):
    new = tickets(ticket, 60)
    settings = domain.Settings()
    for one_ticket in new:
        with one.begin() as s:
            batch.route_new_ticket(s, one_ticket, settings, MONDAY_NOON)
    for start in (0, 25):  # two batches: the second sees the first one's loads and rotation
        with many.begin() as s:
            views = batch.route_new_tickets(s, new[start:start + 25 if start == 0 else None], settings, MONDAY_NOON)
        assert all(v is not None and v["number"] == t["number"]
                   for v, t in zip(views, new[start:start + 25 if start == 0 else None]))
    routed_one, loads_one, events_one = outcome(one)
    routed_many, loads_many, events_many = outcome(many)
    assert routed_many == routed_one
    assert loads_many == loads_one
    assert events_many == events_one
    states = [state for state, *_ in routed_one.values()]
    assert states.count("assigned") > 10 and states.count("queued") > 10  # both paths were exercised


def test_a_batch_never_takes_an_agent_past_capacity_and_routes_each_ticket_once(tmp_path, ticket):
    sessions = desk(tmp_path, "desk.db")
    settings = domain.Settings()
    new = [ticket(number=f"C-{n:03d}", team="billing") for n in range(12)]
    with sessions.begin() as s:
        views = batch.route_new_tickets(s, new + new[:2], settings, MONDAY_NOON)  # two twins at the end
    assert [v["state"] for v in views[:12]].count("assigned") == 5  # Bob 3 + Ann 2; Zoe is offline
    assert views[12:] == [None, None]
    with sessions.begin() as s:  # a second delivery of the same tickets changes nothing
        assert batch.route_new_tickets(s, new, settings, MONDAY_NOON) == [None] * 12
    with sessions() as s:
        assert {a.name: a.load for a in s.scalars(select(Agent)) if a.name in ("Bob", "Ann", "Zoe")} == {
            "Bob": 3, "Ann": 2, "Zoe": 0}
        assert s.scalar(select(func.count()).select_from(Assignment)) == 5
        assert s.scalar(select(func.count()).select_from(RoutedTicket)) == 12
        assert s.scalar(select(func.count()).select_from(Outbox)) == 12


def test_first_deliveries_records_each_event_once(tmp_path):
    sessions = desk(tmp_path, "desk.db")
    with sessions.begin() as s:
        assert first_deliveries(s, ProcessedEvent, ["a", "b", "a"], "h") == {"a", "b"}
    with sessions.begin() as s:
        assert first_deliveries(s, ProcessedEvent, ["b", "c"], "h") == {"c"}
        assert first_deliveries(s, ProcessedEvent, ["b"], "other") == {"b"}
        assert first_deliveries(s, ProcessedEvent, [], "h") == set()


def test_reading_only_the_best_agent_first_never_changes_who_is_chosen(tmp_path, ticket, monkeypatch):
    """Batches of three tickets for teams without skill filters, reading one agent per team first: the
    second ticket of a batch must not go to that agent again when an unread one now ranks before them."""
    monkeypatch.setattr(batch, "CANDIDATES_PER_TICKET", 0)
    monkeypatch.setattr(batch, "CANDIDATES_MIN", 1)
    monkeypatch.setattr(batch, "SMALL_BATCH", 100)
    one, many = desk(tmp_path, "one.db"), desk(tmp_path, "many.db")
    new = [ticket(number=f"D-{n:03d}", team=("billing", "desk")[n % 2], subject="Question",
                  description="A question.") for n in range(12)]
    settings = domain.Settings()
    for each in new:
        with one.begin() as s:
            batch.route_new_ticket(s, each, settings, MONDAY_NOON)
    for start in range(0, len(new), 3):
        with many.begin() as s:
            batch.route_new_tickets(s, new[start:start + 3], settings, MONDAY_NOON)
    assert outcome(many) == outcome(one)
    assert len({agent for _, agent, *_ in outcome(one)[0].values() if agent}) >= 4  # spread over the agents
