"""Keeping the search index in step with the articles, idempotently.

An article event is a notification: the handler reads the article's *current* row and makes the index
agree with it (published: indexed; anything else, or gone: removed). Applying an event twice, or two
events out of order, therefore converges on the same index; backends also skip a document older than the
one they hold. The event id is recorded (:func:`helpdesk_common.consumer.first_delivery`) in the
database after the index was updated, so a repeat is skipped, and a crash in between only repeats work.
"""
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from helpdesk_common.consumer import first_delivery

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
    article_id = envelope["data"]["article"]["id"]
    with sessions() as session:
        if session.get(ProcessedEvent, (envelope["id"], handler)) is not None:
            return False
        sync(session, backend, [article_id])
    try:
        with sessions.begin() as session:
            return first_delivery(session, ProcessedEvent, envelope["id"], handler)
    except IntegrityError:  # another replica handled the same delivery at the same moment
        return False


def changed_since(session, since):
    """Ids of articles changed at or after ``since`` (for a rebuild's catch-up)."""
    query = select(Article.id).where(Article.updated_at >= since).order_by(Article.id)
    return list(session.scalars(query))


def deleted_since(session, since):
    """Ids of articles deleted at or after ``since``, from the service's own outbox."""
    rows = session.scalars(select(Outbox.envelope).where(Outbox.event_type == "article_archived",
                                                         Outbox.created_at >= since))
    return sorted({row["data"]["article"]["id"] for row in rows if row["data"].get("deleted")})
