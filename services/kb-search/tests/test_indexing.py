"""The index handlers are idempotent: a redelivered article event (at least once) changes nothing, and two
replicas handling one delivery at the same moment do not fail. Plain functions, a real SQLite database."""
import pytest
from sqlalchemy import func, select

from helpdesk_common.contracts import validate
from helpdesk_common.contracts.kb import ArticleChanges, BulkImport, NewArticle, Viewer
from helpdesk_common.database import utcnow
from helpdesk_kb_search import domain, indexing
from helpdesk_kb_search.models import Outbox, ProcessedEvent

AGENT = Viewer(actor="alice", role="agent")


class CountingIndex:
    """Records what the handlers ask of the index."""

    def __init__(self):
        self.upserted, self.deleted, self.writes = [], [], 0

    def upsert(self, docs):
        docs = list(docs)
        self.writes += bool(docs)
        self.upserted.extend(d.id for d in docs)

    def delete(self, ids):
        self.deleted.extend(ids)


def envelopes(sessions):
    with sessions() as session:
        return [row.envelope for row in session.scalars(select(Outbox).order_by(Outbox.seq))]


@pytest.mark.parametrize("handler", ["index_published", "index_updated", "index_archived"])
def test_a_redelivered_article_event_changes_nothing(sessions, handler):
    with sessions.begin() as session:
        article = domain.create_article(session, validate(NewArticle, {
            "title": "Toner", "body": "Replace it.", "language": "en", "status": "published"}), AGENT)
    with sessions.begin() as session:
        domain.change_article(session, article["id"], ArticleChanges(status="archived"), AGENT)
    wanted = {"index_published": "article_published", "index_updated": "article_updated",
              "index_archived": "article_archived"}[handler]
    envelope = next(e for e in envelopes(sessions) if e["type"] == wanted)
    index = CountingIndex()
    assert indexing.apply_article_event(sessions, index, envelope, handler) is True
    # The article is archived now, whichever event arrives: the index is made to agree with the row.
    assert index.upserted == [] and index.deleted == [article["id"]]
    for _ in range(3):  # redeliveries
        assert indexing.apply_article_event(sessions, index, envelope, handler) is False
    assert index.deleted == [article["id"]]
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(ProcessedEvent)
                              .where(ProcessedEvent.event_id == envelope["id"])) == 1


class OtherReplicaRecordsFirst:
    """The service's sessions, where another replica commits the same (event, handler) just before this
    one records it: after this one's index write, before its commit."""

    def __init__(self, sessions, event_id, handler):
        self.sessions, self.event_id, self.handler, self.raced = sessions, event_id, handler, False

    def __call__(self):
        return self.sessions()

    def begin(self):
        if not self.raced:
            self.raced = True
            with self.sessions.begin() as session:
                session.add(ProcessedEvent(event_id=self.event_id, handler=self.handler, processed_at=utcnow()))
        return self.sessions.begin()


def test_two_replicas_on_one_delivery_do_not_fail(sessions):
    with sessions.begin() as session:
        article = domain.create_article(session, validate(NewArticle, {
            "title": "Paper jam", "body": "Open the tray.", "language": "en", "status": "published"}), AGENT)
    envelope, = envelopes(sessions)
    index = CountingIndex()
    racing = OtherReplicaRecordsFirst(sessions, envelope["id"], "index_published")
    assert indexing.apply_article_event(racing, index, envelope, "index_published") is False  # no error
    assert racing.raced and index.upserted == [article["id"]]  # the index agrees with the row either way
    assert indexing.apply_article_event(sessions, index, envelope, "index_published") is False
    assert index.upserted == [article["id"]]


def deliveries(sessions, handler="index_published"):
    return [(e["id"], handler, e["data"]["article"]["id"]) for e in envelopes(sessions)]


def test_a_batch_of_events_is_one_index_write_and_repeats_in_it_are_skipped(sessions):
    items = [{"title": f"Router {i}", "body": "Restart it.", "language": "en", "status": "published",
              "external_id": f"r-{i}"} for i in range(30)]
    with sessions.begin() as session:
        ids = domain.import_articles(session, validate(BulkImport, {"articles": items}), AGENT)["ids"]
    first = deliveries(sessions)
    index = CountingIndex()
    assert set(indexing.apply_article_events(sessions, index, first[:10]).values()) == {True}
    results = indexing.apply_article_events(sessions, index, first + first[:3])  # a redelivery inside it
    assert [results[d] for d in first] == [False] * 10 + [True] * 20
    assert index.writes == 2 and sorted(index.upserted) == sorted(ids)  # once each, two writes in all
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(ProcessedEvent)) == 30


def test_a_batch_racing_another_replica_records_the_rest(sessions):
    with sessions.begin() as session:
        domain.import_articles(session, validate(BulkImport, {"articles": [
            {"title": f"Fax {i}", "body": "Dial.", "language": "en", "status": "published"} for i in range(5)]}),
            AGENT)
    batch = deliveries(sessions)
    racing = OtherReplicaRecordsFirst(sessions, batch[2][0], "index_published")
    results = indexing.apply_article_events(racing, CountingIndex(), batch)
    assert [results[d] for d in batch] == [True, True, False, True, True]
    assert set(indexing.apply_article_events(sessions, CountingIndex(), batch).values()) == {False}
