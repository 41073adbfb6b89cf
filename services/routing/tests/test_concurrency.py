"""Several routing processes on one database (SQLite file, PostgreSQL): never past capacity, never twice.

Three processes route the same 200 tickets at once (each in its own shuffled order, as replicas
receiving redelivered events would), then three processes resolve the assigned ones at once, each
resolution draining the team queue into the freed agent. The database must end consistent.
"""
import json
import os
import subprocess
import sys
from collections import Counter

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from helpdesk_common.contracts.routing import NewAgent, NewTeam
from helpdesk_common.adapters.database import engine_for
from helpdesk_common.testing import scratch_postgres_database
from helpdesk_routing import domain
from helpdesk_routing.migrate import upgrade
from helpdesk_routing.models import Agent, Assignment, Outbox, RoutedTicket

HERE = os.path.dirname(os.path.abspath(__file__))
REPLICAS = 3
TICKETS = 200
AGENTS = 12  # capacities 1..4 cycling: 30 slots in all


@pytest.fixture
def postgres_url():
    with scratch_postgres_database("routing_test", fast=True) as url:
        yield url


def run_replicas(url, argument_lists):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    procs = [subprocess.Popen([sys.executable, os.path.join(HERE, "contend.py"), url, *args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for args in argument_lists]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def check_consistent(sessions):
    """Loads match the tickets held and stay within capacity; each ticket assigned at most once."""
    with sessions() as session:
        held = Counter(dict(session.execute(
            select(RoutedTicket.agent_id, func.count()).where(RoutedTicket.state == "assigned")
            .group_by(RoutedTicket.agent_id)).all()))
        agents = list(session.scalars(select(Agent)))
        for agent in agents:
            assert agent.load == held.get(agent.id, 0), f"agent {agent.id}: load {agent.load}, holds {held.get(agent.id)}"
            assert agent.load <= agent.capacity
        per_ticket = Counter(session.scalars(select(Assignment.ticket_number)))
        assert per_ticket and max(per_ticket.values()) == 1, "a ticket was assigned twice"
        assigned_events = Counter(e["data"]["ticket_number"] for e in session.scalars(
            select(Outbox.envelope).where(Outbox.event_type == "ticket_assigned")))
        assert assigned_events == per_ticket
        queued = session.scalar(select(func.count()).select_from(RoutedTicket).where(RoutedTicket.state == "queued"))
        states = Counter(session.scalars(select(RoutedTicket.state)))
        return agents, queued, states


@pytest.mark.parametrize("path", ["one_by_one", "batched_and_one_by_one"])
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_replicas_never_overfill_agents_nor_assign_a_ticket_twice(backend, path, tmp_path, request):
    url = f"sqlite:///{tmp_path / 'shared.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    upgrade(url)
    sessions = sessionmaker(engine_for(url), expire_on_commit=False)
    with sessions.begin() as session:
        domain.create_team(session, NewTeam(name="desk"))
        for i in range(AGENTS):
            domain.create_agent(session, NewAgent.model_validate({
                "name": f"A{i}", "email": f"a{i}@example.com", "teams": ["desk"], "capacity": 1 + i % 4,
                "presence": "online"}), domain.Context())
    capacity = sum(1 + i % 4 for i in range(AGENTS))
    numbers = [f"HD-{n:06d}" for n in range(1, TICKETS + 1)]
    numbers_file = tmp_path / "numbers.json"
    numbers_file.write_text(json.dumps(numbers))

    # batched: one replica routes one by one, the others in batches (the service's collector), at once
    modes = ["route"] * REPLICAS if path == "one_by_one" else ["route"] + ["route-batch"] * (REPLICAS - 1)
    results = run_replicas(url, [[mode, str(numbers_file), str(seed)] for seed, mode in enumerate(modes)])
    total = Counter()
    for result in results:
        total.update(result)
    assert total["assigned"] + total["queued"] == TICKETS  # each ticket routed by exactly one replica
    assert total["seen"] == TICKETS * (REPLICAS - 1)
    agents, queued, states = check_consistent(sessions)
    assert all(a.load == a.capacity for a in agents)  # work-conserving: nobody idle while tickets wait
    assert (states["assigned"], queued) == (capacity, TICKETS - capacity)

    # every agent resolves what they hold, in several processes at once: each frees a slot and drains
    with sessions() as session:
        held = list(session.scalars(select(RoutedTicket.number).where(RoutedTicket.state == "assigned")))
    run_replicas(url, [["resolve", *held[i::REPLICAS]] for i in range(REPLICAS)])
    with sessions.begin() as session:
        domain.sweep_all(session, domain.Context())  # the periodic sweep: picks up any race lost to SKIP LOCKED
    agents, queued, states = check_consistent(sessions)
    assert states["released"] == capacity
    assert states["assigned"] == capacity and queued == TICKETS - 2 * capacity
    # the queue drained most urgent first: a quarter of the tickets are urgent, more than two waves of
    # capacity, so everything the second wave took is urgent
    with sessions() as session:
        second_wave = Counter(session.scalars(select(RoutedTicket.priority).where(RoutedTicket.state == "assigned")))
    assert second_wave == {"urgent": capacity}
