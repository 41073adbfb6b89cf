"""Detection against the store: new tickets recorded once, a surge announced once through the outbox, what
a viewer may see of surges and groups (SQLite, no broker)."""
from datetime import timedelta

from sqlalchemy import func, select

from helpdesk_analytics import detection, store
from helpdesk_analytics.models import TicketFact
from helpdesk_analytics.surge_models import Outbox, Spike, SurgeTicket
from helpdesk_common.events import new_event
from surge_month import MONTH_START, terms

NOW = MONTH_START + timedelta(days=2, hours=11)


def _created(number, at, subject, team="support", category="invoice", channel="web"):
    ticket = {"number": number, "subject": subject, "description": "Since this morning.", "channel": channel,
              "priority": "normal", "status": "new", "team": team, "category": category, "language": "en",
              "version": 1, "created_at": at, "updated_at": at,
              "requester": {"email": "c@example.com", "name": "C"}}
    return new_event("ticket_created", {"ticket": ticket}, subject=number)


def _surge(count=8):
    return [_created(f"HD-{i:03d}", NOW - timedelta(minutes=50 - i), "Checkout fails with error 503")
            for i in range(count)]


def _analyse(session):
    pending = detection.unanalysed(session)
    detection.store_terms(session, {p["number"]: terms(p["text"]) for p in pending})


def test_a_ticket_told_twice_is_recorded_once(sessions):
    events = _surge(3)
    again = dict(events[0], id="00000000-0000-0000-0000-000000000001")  # the same ticket, another event
    with sessions.begin() as session:
        assert detection.record_arrivals(session, events + [events[0]]) == 3
    with sessions.begin() as session:
        assert detection.record_arrivals(session, [again, events[1]]) == 0
        assert session.scalar(select(func.count()).select_from(SurgeTicket)) == 3


def test_a_surge_is_announced_once_through_the_outbox(sessions):
    with sessions.begin() as session:
        detection.record_arrivals(session, _surge())
        _analyse(session)
    with sessions.begin() as session:
        announced = detection.detect_and_announce(session, NOW)
    assert {(a["dimension"], a["count"]) for a in announced} >= {("category", 8), ("wording", 8)}
    with sessions.begin() as session:
        assert detection.detect_and_announce(session, NOW + timedelta(minutes=5)) == []  # still the same surge
        rows = session.scalars(select(Outbox)).all()
        assert len(rows) == len(announced) == session.scalar(select(func.count()).select_from(Spike))
        envelope = rows[0].envelope
        assert envelope["type"] == "spike_detected" and envelope["source"] == "analytics"
        assert [t["number"] for t in envelope["data"]["tickets"]] == [f"HD-{i:03d}" for i in range(8)]


def test_a_viewer_sees_the_surges_and_groups_of_the_tickets_they_may_see(sessions):
    events = _surge(7) + [_created("HD-900", NOW - timedelta(minutes=5), "Checkout fails with error 503",
                                   team="network")]
    with sessions.begin() as session:
        detection.record_arrivals(session, events)
        _analyse(session)
        for event in events:
            ticket = event["data"]["ticket"]
            session.add(TicketFact(number=ticket["number"], team=ticket["team"], status_category="new"))
        session.get(TicketFact, "HD-006").status_category = "resolved"  # solved: no longer grouped
        detection.detect_and_announce(session, NOW)
    with sessions.begin() as session:
        everyone = store.Scope(True)
        groups = detection.similar_groups(session, everyone, NOW)
        assert [[t["number"] for t in g["tickets"]] for g in groups] == [
            ["HD-000", "HD-001", "HD-002", "HD-003", "HD-004", "HD-005", "HD-900"]]
        assert {"checkout", "error", "503"} <= set(groups[0]["terms"])
        network = store.Scope(False, teams=["network"])
        assert [[t["number"] for t in g["tickets"]] for g in detection.similar_groups(session, network, NOW)] == []
        spikes = detection.recent_spikes(session, network, NOW)
        assert spikes and all(s["tickets"] == ["HD-900"] for s in spikes)
        assert detection.recent_spikes(session, store.Scope(False, teams=["billing"]), NOW) == []


def test_the_rebuild_gives_the_detector_its_history(sessions, settings):
    """``analytics-rebuild`` records the exported tickets for the detector too, once each."""
    from helpdesk_analytics import rebuild
    views = [event["data"]["ticket"] for event in _surge(3)]
    page = {"items": [{"ticket": view, "status_changes": [], "messages": []} for view in views], "total": 3}
    for _ in range(2):  # rebuilt twice: still one row each
        rebuild.rebuild(lambda cursor, limit: page, sessions, settings, report=lambda *args: None)
    with sessions() as session:
        assert sorted(session.scalars(select(SurgeTicket.number))) == ["HD-000", "HD-001", "HD-002"]
