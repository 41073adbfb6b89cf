"""The same rules on PostgreSQL (production's database): numbers, literal search, paging, idempotency."""

import pytest
from sqlalchemy.orm import sessionmaker

from helpdesk_common.contracts.tickets import TicketChanges, TicketQuery
from helpdesk_common.adapters.database import engine_for
from helpdesk_common.errors import InvalidTransition, ValidationFailed
from helpdesk_common.testing import scratch_postgres_database
from helpdesk_tickets import domain
from helpdesk_tickets.migrate import upgrade
from helpdesk_tickets.models import Outbox

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_sessions():
    with scratch_postgres_database("tickets_test") as url:
        upgrade(url)
        yield sessionmaker(engine_for(url), expire_on_commit=False)


def test_ticket_rules_on_postgresql(pg_sessions, rules, admin, customer, new_ticket):
    subjects = ["100% broken", "user_name", "username", "Path C:\\temp", "plain"]
    views = []
    for subject in subjects:
        with pg_sessions.begin() as session:
            views.append(domain.open_ticket(session, new_ticket(subject=subject), admin, rules,
                                            idempotency_key=subject)[0])
    numbers = [v["number"] for v in views]
    assert numbers == [f"{numbers[0][:-5]}{i:05d}" for i in range(1, 6)]
    with pg_sessions.begin() as session:  # an idempotent repeat
        again, created = domain.open_ticket(session, new_ticket(subject="plain"), admin, rules,
                                            idempotency_key="plain")
    assert (again["number"], created) == (numbers[4], False)
    with pytest.raises(ValidationFailed):
        with pg_sessions.begin() as session:
            domain.open_ticket(session, new_ticket(subject="other"), admin, rules, idempotency_key="plain")

    def find(viewer=admin, **filters):
        with pg_sessions() as session:
            page = domain.find_tickets(session, TicketQuery.model_validate(filters), viewer)
        return [t["number"] for t in page["items"]], page["next_cursor"]

    assert find(text="%")[0] == [numbers[0]]
    assert find(text="_")[0] == [numbers[1]]
    assert find(text="USERNAME")[0] == [numbers[2]]
    assert find(text="\\")[0] == [numbers[3]]
    seen, cursor = [], None
    while True:
        page, cursor = find(customer, limit=2, **({"cursor": cursor} if cursor else {}))
        seen += page
        if cursor is None:
            break
    assert seen == numbers[::-1]

    with pg_sessions.begin() as session:
        domain.change_ticket(session, numbers[0], TicketChanges(status="closed"), admin, rules)
    with pytest.raises(InvalidTransition):
        with pg_sessions.begin() as session:
            domain.change_ticket(session, numbers[0], TicketChanges(status="open"), admin, rules)
    with pg_sessions() as session:
        assert [o.event_type for o in session.query(Outbox).filter(Outbox.event_type.notlike("contact_%"))
                .order_by(Outbox.seq)] == (
            ["ticket_created"] * 5 + ["ticket_updated", "status_changed"])


def test_two_sla_timers_at_once_announce_each_warning_and_breach_once(pg_sessions, new_ticket, admin):
    """Two replicas' timers claim due clocks at the same moment: every clock is announced exactly once."""
    import threading
    from datetime import datetime, timedelta, timezone

    from helpdesk_tickets.sla import SlaPolicies
    from helpdesk_tickets.workflow import Workflow

    rules = domain.Rules(workflow=Workflow.load(), sla=SlaPolicies.load())
    opened = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)  # a Monday
    with pg_sessions.begin() as session:
        domain.open_tickets(session, [(new_ticket(priority="high"), admin, None) for _ in range(60)], rules,
                            now=opened)
    later = opened + timedelta(days=30)  # every clock past warning and target
    start, results = threading.Barrier(2), []

    def timer():
        start.wait()
        while True:
            with pg_sessions.begin() as session:
                announced = domain.check_sla(session, rules, later, limit=25)
            if not announced:
                return
            results.extend(announced)

    threads = [threading.Thread(target=timer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 60 * 2 * 2 == len(set(results))  # 60 tickets, 2 clocks, warning + breach
    with pg_sessions() as session:
        assert session.query(Outbox).filter(Outbox.event_type.in_(["sla_warning", "sla_breached"])).count() == 240
