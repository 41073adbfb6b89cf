"""The rules of an article's life, as plain functions of a SQLAlchemy session. No nameko in here.

Every function that changes an article records a version and stages its events in the caller's
transaction, so an article, its history and its events are committed together or not at all. The search
index is not touched here: it follows the events (see :mod:`helpdesk_kb_search.indexing`).
"""
import re
import uuid

from types import SimpleNamespace

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from helpdesk_common.contracts import given_fields, validate
from helpdesk_common.contracts.kb import ArticleChanges, NewArticle
from helpdesk_common.database import utcnow
from helpdesk_common.errors import ValidationFailed
from helpdesk_common.events import new_event
from helpdesk_common.outbox import stage, stage_many

from .analysis import html_to_text
from .backends.base import IndexDoc
from .exceptions import (article_not_found, external_id_taken, not_a_portal_suggestion, staff_only,
                         suggestion_not_found, unknown_translation, version_mismatch)
from .models import Article, ArticleVersion, Outbox, Suggestion
from .rendering import render

STAFF = ("admin", "agent", "system")
CHANGEABLE = ("title", "body", "language", "type", "category", "tags", "visibility", "status")
NOT_NULL = ("title", "body", "language", "type", "tags", "visibility", "status")


def iso(moment):
    return moment.isoformat() if moment is not None else None


def is_staff(viewer):
    return viewer.role in STAFF


def visibilities_for(viewer):
    """What a viewer may read: customers and portal visitors public articles only, staff everything."""
    return ["public", "internal"] if is_staff(viewer) else ["public"]


def article_view(article):
    """The article as the API and the events show it."""
    return {
        "id": article.id, "external_id": article.external_id, "title": article.title, "body": article.body,
        "body_html": article.body_html, "language": article.language, "type": article.type,
        "category": article.category, "tags": list(article.tags or []), "visibility": article.visibility,
        "status": article.status, "author": article.author, "translation_group": article.translation_group,
        "version": article.version, "created_at": iso(article.created_at), "updated_at": iso(article.updated_at),
        "published_at": iso(article.published_at), "archived_at": iso(article.archived_at),
    }


def index_doc(article):
    """What the search index keeps of a published article."""
    return IndexDoc(id=article.id, version=article.version, title=article.title,
                    text=html_to_text(article.body_html), language=article.language, type=article.type,
                    visibility=article.visibility, category=article.category, tags=tuple(article.tags or ()),
                    updated_at=iso(article.updated_at))


def _snapshot(article):
    view = article_view(article)
    view.pop("body_html")
    return view


def _publish(session, event_type, data, viewer, article_id):
    stage(session, Outbox, new_event(event_type, data, correlation_id=viewer.correlation_id,
                                     subject=f"KB-{article_id}"))


def _record_version(session, article, viewer, changes, note=None, at=None):
    session.add(ArticleVersion(article_id=article.id, version=article.version, at=at or utcnow(),
                               actor=viewer.actor, note=note, changes=changes, snapshot=_snapshot(article)))


def _status_dates(article, status, now):
    if status == "published":
        article.published_at = article.published_at or now
        article.archived_at = None
    elif status == "archived":
        article.archived_at = now


def find_article(session: Session, article_id, viewer):
    """The article if ``viewer`` may read it; customers see published public articles only."""
    article = session.get(Article, int(article_id)) if str(article_id).isdigit() else None
    if article is None:
        raise article_not_found(article_id)
    if not is_staff(viewer) and (article.status != "published" or article.visibility != "public"):
        raise article_not_found(article_id)
    return article


def create_article(session: Session, command, viewer):
    """Write a new article (a draft unless ``status`` says otherwise). Returns its view."""
    if not is_staff(viewer):
        raise staff_only("write articles")
    if command.external_id and session.scalar(
            select(Article.id).where(Article.external_id == command.external_id)) is not None:
        raise external_id_taken(command.external_id)
    group = None
    if command.translation_of is not None:
        original = session.get(Article, command.translation_of)
        if original is None:
            raise unknown_translation(command.translation_of)
        group = original.translation_group
    now = utcnow()
    article = Article(
        external_id=command.external_id, title=command.title, body=command.body, body_html=render(command.body),
        language=command.language, type=command.type, category=command.category,
        tags=list(dict.fromkeys(command.tags)), visibility=command.visibility, status=command.status,
        author=viewer.actor, translation_group=group or str(uuid.uuid4()), created_at=now, updated_at=now,
    )
    _status_dates(article, command.status, now)
    session.add(article)
    session.flush()
    _record_version(session, article, viewer, [{"field": "created", "old": None, "new": command.status}], at=now)
    view = article_view(article)
    if article.status == "published":
        _publish(session, "article_published", {"article": view}, viewer, article.id)
    return view


def change_article(session: Session, article_id, changes, viewer):
    """Apply a partial update; every field that really changed is recorded in a new version and announced."""
    if not is_staff(viewer):
        raise staff_only("change articles")
    article = find_article(session, article_id, viewer)
    if changes.expected_version is not None and changes.expected_version != article.version:
        raise version_mismatch(article.id, changes.expected_version, article.version)
    given = given_fields(changes, CHANGEABLE, NOT_NULL)
    now = utcnow()
    diff = []
    old_status = article.status
    for field in given:
        new = getattr(changes, field)
        if field == "tags":
            new = list(dict.fromkeys(new))
        old = getattr(article, field)
        if old == new:
            continue
        setattr(article, field, new)
        if field == "body":
            article.body_html = render(new)
            old, new = f"({len(old)} characters)", f"({len(new)} characters)"  # the versions keep the text
        diff.append({"field": field, "old": old, "new": new})
    if not diff:
        return article_view(article)
    if article.status != old_status:
        _status_dates(article, article.status, now)
    article.updated_at = now
    session.flush()  # bumps the version (and fails if someone else changed the row meanwhile)
    _record_version(session, article, viewer, diff, note=changes.note, at=now)
    view = article_view(article)
    _publish(session, "article_updated", {"article": view, "changes": diff}, viewer, article.id)
    if article.status != old_status and article.status == "published":
        _publish(session, "article_published", {"article": view}, viewer, article.id)
    if article.status != old_status and article.status == "archived":
        _publish(session, "article_archived", {"article": view, "deleted": False}, viewer, article.id)
    return view


def delete_article(session: Session, article_id, viewer):
    """Delete an article and its versions for good; announced as archived with ``deleted``."""
    if not is_staff(viewer):
        raise staff_only("delete articles")
    article = find_article(session, article_id, viewer)
    view = article_view(article)
    _publish(session, "article_archived", {"article": view, "deleted": True}, viewer, article.id)
    session.delete(article)
    return {"id": view["id"], "deleted": True}


def list_versions(session: Session, article_id, viewer):
    """Every version of the article, oldest first (staff only)."""
    if not is_staff(viewer):
        raise staff_only("read the history of articles")
    article = find_article(session, article_id, viewer)
    rows = session.scalars(select(ArticleVersion).where(ArticleVersion.article_id == article.id)
                           .order_by(ArticleVersion.version))
    return [{"version": v.version, "at": iso(v.at), "actor": v.actor, "note": v.note, "changes": v.changes,
             "snapshot": v.snapshot} for v in rows]


def import_articles(session: Session, command, viewer):
    """Create or update many articles; an ``external_id`` already known updates that article.

    New articles, their first versions and their events are written with one statement each
    (executemany), so a batch of hundreds costs a few round trips rather than several per article.
    Updates are rarer and go through :func:`change_article` one by one (diff, version check, events).
    ``ids`` follow the order of ``command.articles``.
    """
    if not is_staff(viewer):
        raise staff_only("import articles")
    known = {}
    external = [a.external_id for a in command.articles if a.external_id]
    if external:
        known = dict(session.execute(select(Article.external_id, Article.id)
                                     .where(Article.external_id.in_(external))).all())
    fresh, seen = [], set()  # (position, item): the first mention of an unknown external_id creates it
    for position, item in enumerate(command.articles):
        if item.external_id and (item.external_id in known or item.external_id in seen):
            continue
        if item.external_id:
            seen.add(item.external_id)
        fresh.append((position, item))
    ids = [None] * len(command.articles)
    for (position, _item), article_id in zip(fresh, _create_many(session, [i for _p, i in fresh], viewer)):
        ids[position] = article_id
    known.update({item.external_id: ids[position] for position, item in fresh if item.external_id})
    updated = 0
    for position, item in enumerate(command.articles):
        if ids[position] is None:  # an update: a known article, or one named twice in this import
            fields = item.model_dump(include=set(CHANGEABLE))
            ids[position] = change_article(session, known[item.external_id], ArticleChanges(**fields), viewer)["id"]
            updated += 1
    return {"created": len(fresh), "updated": updated, "ids": ids}


def _create_many(session: Session, items, viewer):
    """Insert new articles, their first versions and their ``article_published`` events; returns their ids."""
    if not items:
        return []
    groups = {}
    originals = {i.translation_of for i in items if i.translation_of is not None}
    if originals:
        groups = dict(session.execute(select(Article.id, Article.translation_group)
                                      .where(Article.id.in_(originals))).all())
        missing = sorted(originals - set(groups))
        if missing:
            raise unknown_translation(missing[0])
    now = utcnow()
    rows = [{
        "external_id": i.external_id, "title": i.title, "body": i.body, "body_html": render(i.body),
        "language": i.language, "type": i.type, "category": i.category, "tags": list(dict.fromkeys(i.tags)),
        "visibility": i.visibility, "status": i.status, "author": viewer.actor,
        "translation_group": groups.get(i.translation_of) or str(uuid.uuid4()), "version": 1,
        "created_at": now, "updated_at": now, "published_at": now if i.status == "published" else None,
        "archived_at": now if i.status == "archived" else None,
    } for i in items]
    table = Article.__table__
    ids = list(session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows).scalars())
    views = [article_view(SimpleNamespace(id=article_id, **row)) for article_id, row in zip(ids, rows)]
    session.execute(insert(ArticleVersion.__table__), [
        {"article_id": view["id"], "version": 1, "at": now, "actor": viewer.actor, "note": None,
         "changes": [{"field": "created", "old": None, "new": view["status"]}],
         "snapshot": {k: v for k, v in view.items() if k != "body_html"}} for view in views])
    stage_many(session, Outbox, [
        new_event("article_published", {"article": view}, correlation_id=viewer.correlation_id,
                  subject=f"KB-{view['id']}") for view in views if view["status"] == "published"])
    return ids


def suggestion_shown(session: Session, request, hits, viewer):
    """Record suggestions shown to someone and stage ``suggestion_shown`` (when there were any hits);
    returns the suggestion's id.

    A ticket's suggestion keeps the hits as ranked (for its agents, :func:`suggestions_for_ticket`), and
    is recorded even when nothing matched (so "none found" differs from "not handled yet"). A portal
    suggestion keeps the article ids and scores only: nothing derived from what the visitor typed.
    """
    suggestion_id = str(uuid.uuid4())
    if request.context == "ticket":
        items = [{**hit, "position": position} for position, hit in enumerate(hits, 1)]
    else:
        items = [{"id": hit["id"], "position": position, "score": hit["score"]}
                 for position, hit in enumerate(hits, 1)]
    session.add(Suggestion(id=suggestion_id, context=request.context, language=request.lang,
                           ticket_number=request.ticket_number, items=items, created_at=utcnow()))
    if hits:
        stage(session, Outbox, _suggestion_shown_event(suggestion_id, request, hits, viewer))
    return suggestion_id


def suggestions_shown(session: Session, reports, viewer):
    """Record portal suggestions a gateway answered from its cache (``SuggestionShownReport``s), each as
    :func:`suggestion_shown` records one it searched for: a row and a ``suggestion_shown`` event, in the
    caller's transaction. An id recorded already (the batch sent again after a lost answer) is skipped."""
    ids = [report.suggestion_id for report in reports]
    known = set(session.scalars(select(Suggestion.id).where(Suggestion.id.in_(ids))))
    now, events = utcnow(), []
    for report in reports:
        if report.suggestion_id in known:
            continue
        known.add(report.suggestion_id)
        items = [{"id": item.id, "position": position, "score": item.score}
                 for position, item in enumerate(report.items, 1)]
        session.add(Suggestion(id=report.suggestion_id, context="portal", language=report.lang, ticket_number=None,
                               items=items, created_at=now))
        request = SimpleNamespace(context="portal", lang=report.lang, text="x" * report.query_length,
                                  ticket_number=None)
        events.append(_suggestion_shown_event(report.suggestion_id, request, items, viewer))
    stage_many(session, Outbox, events)
    return len(events)


def _suggestion_shown_event(suggestion_id, request, hits, viewer):
    # No typed text in the event: only its length and the article ids.
    data = {"suggestion_id": suggestion_id, "context": request.context, "language": request.lang,
            "query_length": len(request.text), "article_ids": [h["id"] for h in hits],
            "ticket_number": request.ticket_number}
    return new_event("suggestion_shown", data, correlation_id=viewer.correlation_id, subject=request.ticket_number)


def ticket_suggestions_shown(session: Session, shown):
    """Record the suggestions for new tickets, ``shown`` being ``(request, viewer, hits)`` triples (ticket
    context), and stage ``suggestion_shown`` for those with hits: as :func:`suggestion_shown` does for one,
    but with one insert for the suggestions and one for the events. Returns the suggestion ids, in order."""
    if not shown:
        return []
    now = utcnow()
    rows, events = [], []
    for request, viewer, hits in shown:
        suggestion_id = str(uuid.uuid4())
        rows.append({"id": suggestion_id, "context": request.context, "language": request.lang,
                     "ticket_number": request.ticket_number, "created_at": now, "deflected_at": None,
                     "deflected_article_id": None,
                     "items": [{**hit, "position": position} for position, hit in enumerate(hits, 1)]})
        if hits:
            events.append(_suggestion_shown_event(suggestion_id, request, hits, viewer))
    # Core inserts (executemany): the same rows without the ORM's unit-of-work bookkeeping per object.
    session.execute(insert(Suggestion.__table__), rows)
    stage_many(session, Outbox, events)
    return [row["id"] for row in rows]


_REFRESHED = ("title", "language", "type", "category", "tags", "visibility")


def suggestions_for_ticket(session: Session, number, viewer):
    """The articles suggested for ticket ``number`` when it was created, best first (staff only).

    Rank, score and snippet are those of the moment of suggestion; title, visibility and the rest are the
    article's current ones, and an article since deleted, archived or unpublished is left out.
    """
    if not is_staff(viewer):
        raise staff_only("read the articles suggested for a ticket")
    row = session.scalars(select(Suggestion).where(Suggestion.ticket_number == number,
                                                   Suggestion.context == "ticket")
                          .order_by(Suggestion.created_at.desc()).limit(1)).first()
    if row is None:
        return {"ticket_number": number, "suggestion_id": None, "suggested_at": None, "items": []}
    ids = [item["id"] for item in row.items]
    current = {a.id: a for a in session.scalars(select(Article).where(Article.id.in_(ids)))} if ids else {}
    items = []
    for item in row.items:
        article = current.get(item["id"])
        if article is None or article.status != "published":
            continue
        fresh = {field: getattr(article, field) for field in _REFRESHED}
        fresh["tags"] = list(fresh["tags"] or [])
        items.append({**item, **fresh})
    return {"ticket_number": number, "suggestion_id": row.id, "suggested_at": iso(row.created_at),
            "items": items}


def suggestion_resolved(session: Session, suggestion_id, command, viewer):
    """A portal visitor's question was answered by suggestion ``suggestion_id``: no ticket (deflection).

    Recorded, and ``suggestion_deflected`` staged, once per suggestion; a repeat answers
    ``recorded: false`` with the first resolution. ``command.article_id``, when given, must be one of the
    articles that were shown.
    """
    row = session.get(Suggestion, suggestion_id)
    if row is None:
        raise suggestion_not_found(suggestion_id)
    if row.context != "portal":
        raise not_a_portal_suggestion(suggestion_id)
    shown = [item["id"] for item in row.items]
    if command.article_id is not None and command.article_id not in shown:
        raise ValidationFailed("article_id was not among the articles of this suggestion.",
                               details=[{"field": "article_id", "code": "invalid_value",
                                         "message": f"one of {shown}"}])
    now = utcnow()
    # Conditional, so two resolutions racing on different replicas announce it once.
    won = session.execute(update(Suggestion).where(Suggestion.id == row.id, Suggestion.deflected_at.is_(None))
                          .values(deflected_at=now, deflected_article_id=command.article_id)
                          .execution_options(synchronize_session=False)).rowcount == 1
    if not won:
        session.refresh(row)
        return {"suggestion_id": row.id, "recorded": False, "deflected_at": iso(row.deflected_at),
                "article_id": row.deflected_article_id}
    data = {"suggestion_id": row.id, "language": row.language, "article_ids": shown,
            "article_id": command.article_id, "shown_at": row.created_at, "deflected_at": now}
    stage(session, Outbox, new_event("suggestion_deflected", data, correlation_id=viewer.correlation_id,
                                     subject=f"KB-{command.article_id}" if command.article_id else None))
    return {"suggestion_id": row.id, "recorded": True, "deflected_at": iso(now), "article_id": command.article_id}


def suggestion_opened(session: Session, command, viewer):
    """Stage ``suggestion_opened``: someone opened an article that was suggested to them."""
    article = find_article(session, command.article_id, viewer)
    data = {"suggestion_id": command.suggestion_id, "article_id": article.id, "position": command.position}
    stage(session, Outbox, new_event("suggestion_opened", data, correlation_id=viewer.correlation_id,
                                     subject=f"KB-{article.id}"))
    return {"recorded": True}


# --- from a solved ticket to a draft article --------------------------------------------------------

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w/])\+?\(?\d[\d ()./-]{6,}\d(?![\w/])")
_URL_WITH_TOKEN = re.compile(r"https?://\S+[?&](?:token|key|code|sig|signature)=\S+", re.IGNORECASE)


def scrub(text):
    """Remove personal data a ticket tends to carry: email addresses, phone numbers, links with secrets."""
    text = _URL_WITH_TOKEN.sub("[link removed]", text)
    text = _EMAIL.sub("[email removed]", text)
    return _PHONE.sub("[phone removed]", text)


def draft_from_ticket(session: Session, ticket, messages, viewer, language=None):
    """A draft article pre-filled from a solved ticket's question and its public answers, for review.

    ``ticket`` is the ticket view and ``messages`` its messages as the tickets service returns them (the
    caller fetches both); internal notes are never used. Personal data is removed (:func:`scrub`).
    """
    if not is_staff(viewer):
        raise staff_only("turn tickets into articles")
    answers = [m["body"] for m in messages
               if m.get("visibility") == "public" and m.get("author_role") in STAFF]
    if not answers:
        raise ValidationFailed("The ticket has no public answer from an agent to turn into an article.",
                               code="no_public_answer")
    language = language or ticket.get("language") or "en"
    body = "\n\n".join([f"## {_QUESTION.get(language, 'Question')}", scrub(ticket["description"]),
                        f"## {_ANSWER.get(language, 'Answer')}", *[scrub(a) for a in answers]])
    command = validate(NewArticle, {
        "title": scrub(ticket["subject"])[:200], "body": body[:200_000], "language": language, "type": "faq",
        "tags": [t for t in ticket.get("tags") or [] if _TAG.match(t)][:50], "status": "draft",
        "visibility": "public"})
    view = create_article(session, command, viewer)
    return view


_QUESTION = {"en": "Question", "nl": "Vraag", "sv": "Fråga"}
_ANSWER = {"en": "Answer", "nl": "Antwoord", "sv": "Svar"}
_TAG = re.compile(r"^[\w][\w .:/-]{0,49}$")
