"""Suggestions for new tickets, many tickets per transaction (:mod:`helpdesk_kb_search.ticket_suggestions`).

First the rules on a database alone (a fake index: only the recording is under test), then the service in a
real container on a real RabbitMQ with the embedded index, on SQLite and on PostgreSQL.
"""
from collections import Counter

import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import distinct, func, select
from sqlalchemy.orm import sessionmaker

from helpdesk_common.adapters.database import engine_for
from helpdesk_common.events import new_event
from helpdesk_common.adapters.group_commit import BATCH_SIZE
from helpdesk_common.testing import publish_events, scratch_postgres_database
from helpdesk_kb_search import ticket_suggestions
from helpdesk_kb_search.backends.base import Hit, Results
from helpdesk_kb_search.migrate import upgrade
from helpdesk_kb_search.models import Outbox, ProcessedEvent, Suggestion
from helpdesk_kb_search.service import KbSearchService

AGENT = {"actor": "alice", "role": "agent", "correlation_id": "req-1"}


def ticket_created(number, subject, description="Please help", language="en"):
    ticket = {"number": number, "subject": subject, "description": description,
              "requester": {"email": "c@example.com"}, "channel": "email", "priority": "normal", "status": "new",
              "language": language, "version": 1, "created_at": "2026-11-22T12:00:00+00:00",
              "updated_at": "2026-11-22T12:00:00+00:00"}
    return new_event("ticket_created", {"ticket": ticket}, correlation_id=f"req-{number}")


class PrinterIndex:
    """Finds one internal article for tickets about printers, nothing for the others; counts searches."""

    name = "fake"

    def __init__(self):
        self.searched = []

    def search(self, query):
        self.searched.append(query)
        if "printer" not in query.text.lower():
            return Results(hits=[], total=0)
        return Results(hits=[Hit(id=7, score=2.0, title="Printer jams", snippet="s", language="en", type="faq",
                                 visibility="internal")], total=1)


def test_a_batch_records_each_new_ticket_once_with_its_events(sessions):
    """Twins in a batch and a redelivery of a handled event are recorded once and not searched again."""
    index = PrinterIndex()
    events = [ticket_created("HD-1", "Printer on fire"), ticket_created("HD-2", "Xylophone"),
              ticket_created("HD-3", "printer offline", language="de")]
    ids = ticket_suggestions.suggest_for_tickets(sessions, index, events + events[:1])
    assert all(ids[:3]) and ids[3] is None and len(set(ids[:3])) == 3
    assert len(index.searched) == 3 and index.searched[2].languages == ["en"]  # an unknown language searches English
    assert all("internal" in q.visibilities for q in index.searched)  # the agents see internal articles
    again = ticket_suggestions.suggest_for_tickets(sessions, index, events[1:] + [ticket_created("HD-4", "Printer")])
    assert again[:2] == [None, None] and again[2] and len(index.searched) == 4
    assert ticket_suggestions.suggest_for_ticket(sessions, index, events[0]) is None  # one by one agrees
    with sessions() as session:
        rows = {s.ticket_number: s for s in session.scalars(select(Suggestion))}
        shown = [row.envelope for row in session.scalars(select(Outbox).where(Outbox.event_type == "suggestion_shown"))]
    assert sorted(rows) == ["HD-1", "HD-2", "HD-3", "HD-4"]
    assert rows["HD-2"].items == [] and rows["HD-1"].items[0]["position"] == 1
    assert rows["HD-1"].items[0]["visibility"] == "internal" and rows["HD-1"].context == "ticket"
    assert sorted(e["subject"] for e in shown) == ["HD-1", "HD-3", "HD-4"]  # "none found" announces nothing
    one = next(e for e in shown if e["subject"] == "HD-1")
    assert one["correlation_id"] == "req-HD-1" and one["data"]["suggestion_id"] == rows["HD-1"].id
    assert one["data"]["article_ids"] == [7] and one["data"]["ticket_number"] == "HD-1"


def test_a_malformed_event_fails_the_batch_before_anything_is_searched_or_recorded(sessions):
    index = PrinterIndex()
    bad = ticket_created("HD-9", "Printer")
    del bad["data"]["ticket"]["subject"]
    with pytest.raises(KeyError):
        ticket_suggestions.suggest_for_tickets(sessions, index, [ticket_created("HD-8", "Printer"), bad])
    assert index.searched == []
    with sessions() as session:
        assert session.scalars(select(Suggestion)).all() == [] and session.scalars(select(ProcessedEvent)).all() == []


# --- the service on RabbitMQ ----------------------------------------------------------------------

@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request, tmp_path):
    """A migrated kb database: SQLite in a file, or a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'kb.db'}"
        upgrade(url)
        yield url
        return
    with scratch_postgres_database("kb_test") as url:
        upgrade(url)
        yield url


def test_new_tickets_waiting_in_the_queue_are_suggested_in_batches_and_a_bad_one_fails_alone(
        container_factory, rabbit_config, database, tmp_path, wait_for):
    """Sixty new tickets (three delivered twice, one malformed) wait in kb_search's queue while it is
    down; when it starts they share transactions (far fewer than events), every good ticket gets its
    suggestions once (the internal article for the printer ones), and the malformed one fails alone."""
    config = {**rabbit_config, "KB_DB_URL": database, "serializer": "json", "OUTBOX_POLL_INTERVAL": 0.2,
              "KB_SEARCH_BACKEND": "embedded", "KB_INDEX_DIR": str(tmp_path / "index"), "max_workers": 16}
    sessions = sessionmaker(engine_for(database), expire_on_commit=False)
    first = container_factory(KbSearchService, config)
    first.start()  # declares the queue; the article is indexed through its event
    with ServiceRpcProxy("kb_search", config, timeout=20) as kb:
        article = kb.create_article({"title": "Printer jams", "status": "published", "language": "en",
                                     "visibility": "internal", "body": "Open tray 2 and pull the paper."}, AGENT)
        wait_for(lambda: kb.search("printer", "en", None, AGENT)["items"], message="indexing")
    first.stop()

    envelopes = [ticket_created(f"HD-{n:06d}", "The printer jams" if n % 2 else "Xylophone", "Qwzx blorp")
                 for n in range(1, 61)]
    del envelopes[7]["data"]["ticket"]["subject"]  # fails its batch, then alone (retried, then parked)
    for start in range(0, 60, 20):  # as the tickets relay: batches of events
        publish_events(config["AMQP_URI"], envelopes[start:start + 20])
    publish_events(config["AMQP_URI"], envelopes[:3])  # at least once: twins

    before = BATCH_SIZE.labels("kb_search")._sum.get()
    container_factory(KbSearchService, config).start()
    good = {e["data"]["ticket"]["number"] for i, e in enumerate(envelopes) if i != 7}

    def suggested():
        with sessions() as session:
            return Counter(session.scalars(select(Suggestion.ticket_number).where(Suggestion.context == "ticket")))

    wait_for(lambda: set(suggested()) >= good, timeout=60, message="every good ticket suggested")
    with sessions() as session:
        rows = {s.ticket_number: s for s in session.scalars(select(Suggestion))}
        shown = Counter(row.envelope["subject"] for row in session.scalars(
            select(Outbox).where(Outbox.event_type == "suggestion_shown")))
        handled = session.scalars(select(ProcessedEvent.event_id).where(
            ProcessedEvent.handler == "suggest_for_ticket")).all()
        # A transaction's suggestions share its moment: distinct moments are the transactions that wrote them.
        writes = session.scalar(select(func.count(distinct(Suggestion.created_at))))
    assert set(suggested()) == good and max(suggested().values()) == 1  # once each, twins included
    printers = {n for n in good if int(n[3:]) % 2}
    assert set(shown) == printers and max(shown.values()) == 1
    assert all([i["id"] for i in rows[n].items] == [article["id"]] for n in printers)
    assert all(rows[n].items == [] for n in good - printers)
    assert len(handled) == len(set(handled)) == len(good)
    assert envelopes[7]["id"] not in handled
    # Batches: the failed one was split and its events ran alone, the others shared a transaction.
    assert writes <= 2 + 20 + 1, writes
    singles = BATCH_SIZE.labels("kb_search")._sum.get() - before
    # Only the split batch's events went one by one (through the group commit): its 19 good ones, and the
    # malformed one once per attempt so far.
    assert 20 <= singles <= 25, singles
