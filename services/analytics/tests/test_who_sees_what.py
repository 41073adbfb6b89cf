"""Who sees which figures (issue 15: "supervisors and admins see everything; an agent sees their own figures and
their teams'"), over a generated history without a broker. The gateway gives a supervisor the services' admin
role; an agent is known by their teams and, for their own tickets, by their email (``ticket_assigned``)."""
from datetime import timedelta

import pytest

from analytics_history import AGENTS, START, generate
from helpdesk_analytics import reports
from test_reports_match_recount import feed

NOW = START + timedelta(days=40)
PERIOD = {"from": START.isoformat(), "to": (START + timedelta(days=35)).isoformat(), "tz": "UTC"}
OWN = AGENTS["support"][0]  # agent-11, of support


@pytest.fixture(scope="module")
def events():
    return generate(tickets=300, weeks=5, seed=8)


@pytest.fixture
def fed(sessions, settings, events):
    feed(sessions, settings, events)
    return sessions


def _created_by(session, viewer, group):
    rows = reports.run(session, "volume", dict(PERIOD, group_by=group), viewer, NOW)["rows"]
    return {row[group]: row["created"] for row in rows}


def test_a_supervisor_sees_every_team_and_agent(fed):
    supervisor = {"actor": "sue", "role": "admin", "email": "sue@example.com", "teams": []}  # as the gateway sends
    with fed() as session:
        teams = _created_by(session, supervisor, "team")
        agents = _created_by(session, supervisor, "agent")
    assert set(teams) == {"support", "billing", "network"}
    assert set(agents) >= {a for team in AGENTS.values() for a in team}


def test_an_agent_sees_their_teams_and_their_own_tickets(fed):
    everyone = {"actor": "sue", "role": "admin", "teams": []}
    agent = {"actor": "al", "role": "agent", "email": f"{OWN}@example.com".upper(), "teams": ["billing"]}
    with fed() as session:
        all_agents = _created_by(session, everyone, "agent")
        seen = _created_by(session, agent, "agent")
        seen_teams = _created_by(session, agent, "team")
    expected = {a: n for a, n in all_agents.items() if a in AGENTS["billing"] or a == OWN}
    assert seen == expected  # billing's agents' tickets, and their own in support, nobody else's
    assert set(seen_teams) == {"billing", "support"}
    assert seen_teams["support"] == all_agents[OWN]


def test_an_agent_of_no_team_sees_their_own_figures_only(fed):
    agent = {"actor": "al", "role": "agent", "email": f"{OWN}@example.com", "teams": []}
    stranger = {"actor": "zed", "role": "agent", "email": "zed@example.com", "teams": []}
    with fed() as session:
        assert set(_created_by(session, agent, "agent")) == {OWN}
        assert _created_by(session, stranger, "agent") == {}
        own_csat = reports.run(session, "csat", dict(PERIOD, group_by="agent"), agent, NOW)["rows"]
    assert {row["agent"] for row in own_csat} <= {OWN}


def test_a_filter_cannot_widen_what_an_agent_sees(fed):
    agent = {"actor": "al", "role": "agent", "email": "nobody@example.com", "teams": ["billing"]}
    with fed() as session:
        rows = reports.run(session, "volume", dict(PERIOD, team="network"), agent, NOW)["rows"]
    assert rows == [] or all(row["created"] == 0 for row in rows)
