"""Every report over a generated history equals a brute-force recount from the raw events, when the events
arrive shuffled, some twice (redeliveries under the same id), in batches, with types analytics does not read.
No broker here (facts.ingest is called as the service's handlers call it); tests/test_analytics_e2e.py sends
a history through RabbitMQ."""
import random
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from analytics_history import CALENDARS, START, STATUSES, generate
from analytics_recount import Recount
from helpdesk_analytics import facts, reports

ADMIN = {"actor": "ada", "role": "admin", "teams": []}
NOW = START + timedelta(days=40)
END = START + timedelta(days=35)


def feed(sessions, settings, events, batch=200):
    for index in range(0, len(events), batch):
        with sessions.begin() as session:
            facts.ingest(session, events[index:index + batch], settings)


def disorderly(events, seed=3):
    """The events shuffled, a tenth of them twice, and an event type nobody reads mixed in."""
    rng = random.Random(seed)
    mixed = events + rng.sample(events, len(events) // 10)
    mixed.append({"id": "00000000-0000-4000-8000-000000000001", "type": "ticket_teleported", "source": "tickets",
                  "time": START.isoformat(), "data": {"ticket": {"number": "HD-000001"}}})
    rng.shuffle(mixed)
    return mixed


def rows_by_key(answer, group_by):
    return {tuple(row[g] for g in group_by): row for row in answer["rows"]}


def assert_same(answer, expected, group_by):
    got = rows_by_key(answer, group_by)
    assert set(got) == set(expected), (sorted(set(got) ^ set(expected), key=str)[:5])
    for key, values in expected.items():
        for name, value in values.items():
            if value is None:
                assert got[key][name] is None, (key, name)
            else:
                assert got[key][name] == pytest.approx(value, rel=1e-9, abs=1e-6), (key, name)


CASES = [
    ("volume", ()), ("volume", ("day",)), ("volume", ("team", "priority")), ("volume", ("week", "channel")),
    ("first_response", ("team",)), ("first_response", ("priority", "week")), ("resolution", ()),
    ("resolution", ("agent",)), ("resolution", ("category", "language")), ("sla", ()), ("sla", ("team",)),
    ("escalations", ("team",)), ("one_touch", ("channel",)), ("csat", ("team",)), ("csat", ("agent", "week")),
    ("nps", ()), ("nps", ("language",)), ("chats", ()), ("chats", ("agent",)), ("deflection", ()),
    ("deflection", ("week",)), ("backlog", ("day",)), ("backlog", ("day", "team")),
]


@pytest.fixture(scope="module")
def history():
    events = generate(tickets=1000, weeks=4)
    return events, Recount(events, STATUSES, CALENDARS)


@pytest.fixture
def fed(sessions, settings, history):
    feed(sessions, settings, disorderly(history[0]))
    return sessions


@pytest.mark.parametrize("tz", ["UTC", "Europe/Stockholm"])
def test_every_report_equals_the_recount_from_raw_events(fed, history, tz):
    _, recount = history
    start = datetime(2026, 10, 5, tzinfo=timezone.utc)
    with fed() as session:
        for measure, group_by in CASES:
            query = {"from": start.isoformat(), "to": END.isoformat(), "tz": tz, "group_by": ",".join(group_by)}
            answer = reports.run(session, measure, query, ADMIN, NOW)
            expected, grouped = recount.report(measure, start, END, group_by, tz=tz, now=NOW)
            assert expected, (measure, group_by)  # the history has something to count in each
            assert_same(answer, expected, grouped)


def test_filters_and_an_agents_view_of_their_teams(fed, history):
    _, recount = history
    start = START + timedelta(days=7)
    with fed() as session:
        query = {"from": start.isoformat(), "to": END.isoformat(), "tz": "UTC", "group_by": "day",
                 "team": "billing", "priority": "high"}
        expected, grouped = recount.report("volume", start, END, ("day",), {"team": "billing", "priority": "high"})
        assert_same(reports.run(session, "volume", query, ADMIN, NOW), expected, grouped)
        # an agent of billing sees billing's figures, whatever team they ask for
        agent = {"actor": "bo", "role": "agent", "email": "nobody@example.com", "teams": ["billing"]}
        query = {"from": start.isoformat(), "to": END.isoformat(), "tz": "UTC", "group_by": "team"}
        rows = reports.run(session, "volume", query, agent, NOW)["rows"]
        assert [row["team"] for row in rows] == ["billing"]


def test_backlog_filtered_and_as_an_agent_sees_it(fed, history):
    """The backlog is counted back from the totals standing now: its filters and an agent's scope apply to
    both the totals and the moves."""
    _, recount = history
    start = START + timedelta(days=10)
    with fed() as session:
        query = {"from": start.isoformat(), "to": END.isoformat(), "tz": "Europe/Stockholm", "group_by": "day",
                 "team": "network", "channel": "email"}
        expected, grouped = recount.report("backlog", start, END, ("day",), {"team": "network", "channel": "email"},
                                           tz="Europe/Stockholm", now=NOW)
        assert expected
        assert_same(reports.run(session, "backlog", query, ADMIN, NOW), expected, grouped)
        agent = {"actor": "bo", "role": "agent", "email": "nobody@example.com", "teams": ["support"]}
        query = {"from": start.isoformat(), "to": END.isoformat(), "tz": "UTC", "group_by": "day,priority"}
        expected, grouped = recount.report("backlog", start, END, ("day", "priority"), {"team": "support"}, now=NOW)
        assert_same(reports.run(session, "backlog", query, agent, NOW), expected, grouped)


def test_backlog_totals_equal_a_count_of_the_tickets_last_moves(fed):
    """``backlog_totals`` is kept by adding each batch's moves: it equals counting every ticket where its last
    status move put it, after shuffled and repeated events."""
    with fed() as session:
        kept = {tuple(row[:-1]): row[-1] for row in session.execute(text(
            "SELECT status_category, team, agent, channel, priority, category, language, policy, tickets "
            "FROM backlog_totals WHERE tickets != 0"))}
        counted = {tuple(row[:-1]): row[-1] for row in session.execute(text(
            "SELECT settled_category, COALESCE(team, ''), COALESCE(agent, ''), COALESCE(channel, ''), "
            "COALESCE(priority, ''), COALESCE(category, ''), COALESCE(language, ''), COALESCE(sla_policy, ''), "
            "count(*) FROM ticket_facts WHERE settled_category IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7, 8"))}
        assert kept == counted
        assert sum(counted.values()) == session.scalar(text("SELECT count(*) FROM ticket_facts"))
