"""Keeping the search index in step with the articles, idempotently.

An article event is a notification: the handler reads the article's *current* row and makes the index
agree with it (published: indexed; anything else, or gone: removed). Applying an event twice, or two
events out of order, therefore converges on the same index; backends also skip a document older than the
one they hold. The event id is recorded (:func:`helpdesk_common.consumer.first_delivery`) in the
database after the index was updated, so a repeat is skipped, and a crash in between only repeats work.
"""
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from helpdesk_common.inbox import first_delivery
from helpdesk_common.database import utcnow

from .domain import index_doc
from .models import Article, Outbox, ProcessedEvent

ARTICLE_EVENTS = ("article_published", "article_updated", "article_archived")


def sync(session, backend, ids):
    """Make the index agree with the database for articles ``ids``; returns (indexed, removed)."""
    ids = sorted({int(i) for i in ids})
    articles = {a.id: a for a in session.scalars(select(Article).where(Article.id.in_(ids)))} if ids else {}
    published = [index_doc(a) for a in articles.values() if a.status == "published"]
    removed = [i for i in ids if i not in articles or articles[i].status != "published"]
    backend.upsert(published)
    backend.delete(removed)
    return len(published), len(removed)


def apply_article_event(sessions, backend, envelope, handler):
    """Handle one article event; returns False when it was a repeat."""
    delivery = (envelope["id"], handler, envelope["data"]["article"]["id"])
    return apply_article_events(sessions, backend, [delivery])[delivery]


def apply_article_events(sessions, backend, deliveries):
    """Handle many article events with one index write; ``deliveries`` are ``(event_id, handler,
    article_id)``. Returns ``{delivery: True}`` for those applied, False for repeats.

    The index is written first and the deliveries recorded after, so a crash in between repeats the
    (idempotent) index write rather than losing it.
    """
    deliveries = list(dict.fromkeys(deliveries))
    event_ids = sorted({event_id for event_id, _handler, _article in deliveries})
    with sessions() as session:
        done = set(session.execute(select(ProcessedEvent.event_id, ProcessedEvent.handler)
                                   .where(ProcessedEvent.event_id.in_(event_ids))).tuples())
        todo = [d for d in deliveries if (d[0], d[1]) not in done]
        sync(session, backend, [article_id for _event, _handler, article_id in todo])
    results = {d: False for d in deliveries}
    try:
        with sessions.begin() as session:
            for event_id, handler, article_id in todo:
                session.add(ProcessedEvent(event_id=event_id, handler=handler, processed_at=utcnow()))
        results.update({d: True for d in todo})
    except IntegrityError:  # another replica recorded some of them meanwhile: record the rest one by one
        for delivery in todo:
            try:
                with sessions.begin() as session:
                    results[delivery] = first_delivery(session, ProcessedEvent, delivery[0], delivery[1])
            except IntegrityError:
                results[delivery] = False
    return results


def apply_article_batch(sessions, backend, deliveries):
    """:func:`apply_article_events` in the group commit's terms: one result per delivery, in order."""
    results = apply_article_events(sessions, backend, deliveries)
    return [results[delivery] for delivery in deliveries]


def changed_since(session, since):
    """Ids of articles changed at or after ``since`` (for a rebuild's catch-up)."""
    query = select(Article.id).where(Article.updated_at >= since).order_by(Article.id)
    return list(session.scalars(query))


def deleted_since(session, since):
    """Ids of articles deleted at or after ``since``, from the service's own outbox."""
    rows = session.scalars(select(Outbox.envelope).where(Outbox.event_type == "article_archived",
                                                         Outbox.created_at >= since))
    return sorted({row["data"]["article"]["id"] for row in rows if row["data"].get("deleted")})
