"""The business metrics (open tickets by team and priority, SLA at risk and breached, waiting chats, CSAT over
seven days) equal a recount from the raw events at a given moment."""
from datetime import timedelta

from analytics_history import CALENDARS, START, STATUSES, generate
from analytics_recount import Recount
from helpdesk_analytics import business
from helpdesk_analytics.service import OPEN_TICKETS, _set_labelled
from helpdesk_common.events import new_event
from test_reports_match_recount import feed


def test_the_gauges_equal_a_recount_of_the_events(sessions, settings):
    events = generate(tickets=300, weeks=2, seed=21)
    warned = [e["data"]["ticket"]["number"] for e in events if e["type"] == "ticket_created"][:25]
    for number in warned:  # a warning on 25 tickets: those still open and not breached are at risk
        events.append(new_event("sla_warning", {"ticket_number": number, "metric": "resolution", "target_seconds": 3600,
                                                "elapsed_seconds": 3000.0, "remaining_seconds": 600.0, "threshold": 0.8,
                                                "at": START.isoformat()}))
    feed(sessions, settings, events)
    recount = Recount(events, STATUSES, CALENDARS)
    now = START + timedelta(days=16)
    with sessions() as session:
        got = business.snapshot(session, now)
    still_open = {n: t for n, t in recount.tickets.items() if STATUSES[t["status"]] not in ("resolved", "closed")}
    expected = {}
    for t in still_open.values():
        expected[(t["team"], t["priority"])] = expected.get((t["team"], t["priority"]), 0) + 1
    assert got.open_tickets == expected and sum(expected.values()) > 0
    breached = {}
    for n, t in still_open.items():
        if recount.breached(n):
            breached[t["team"]] = breached.get(t["team"], 0) + 1
    assert got.sla_breached == breached
    at_risk = {}
    for n in warned:
        if n in still_open and not recount.breached(n):
            at_risk[still_open[n]["team"]] = at_risk.get(still_open[n]["team"], 0) + 1
    assert got.sla_at_risk == at_risk and at_risk
    week = [a for a in recount.latest_answers("csat")
            if now - timedelta(days=7) <= recount_time(a["submitted_at"]) <= now]
    assert (got.csat_answers, got.csat_satisfied) == (len(week), sum(1 for a in week if a["rating"] >= 4))
    assert got.waiting_chats == 0  # every generated chat was answered or ended


def recount_time(value):
    from datetime import datetime
    return datetime.fromisoformat(value)


def test_a_team_with_nothing_open_leaves_the_gauge():
    _set_labelled(OPEN_TICKETS, {("alpha", "high"): 2, ("beta", "low"): 1})
    _set_labelled(OPEN_TICKETS, {("alpha", "high"): 1})
    samples = {tuple(s.labels.values()): s.value for s in OPEN_TICKETS.collect()[0].samples}
    assert samples == {("alpha", "high"): 1.0}
