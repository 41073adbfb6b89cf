"""The kb_search nameko service: thin RPC entrypoints over ``domain`` (articles) and ``search``.

Every answer is plain JSON-able data; errors a caller can act on are ``helpdesk_common.errors`` classes
(``ValidationFailed`` 422, ``NotFound`` 404, ``Forbidden`` 403, ``Conflict`` 409).

The search index follows the service's own events: a change to an article commits the article and its
event (outbox) together; the relay publishes the event; the handlers here bring the index in step.
"""
import logging
from functools import partial

from helpdesk_common.adapters.queues import rpc
from sqlalchemy import text
from sqlalchemy.orm.exc import StaleDataError

from helpdesk_common.contracts import validate
from helpdesk_common.contracts.kb import (LANGUAGES, ArticleChanges, BrowseQuery, BulkImport, NewArticle,
                                          SearchRequest,
                                          SuggestionOpenedReport, SuggestionResolved, SuggestionsShown, SuggestRequest,
                                          Viewer)
from helpdesk_common.adapters.database import Database
from helpdesk_common.database import run_in_transaction
from helpdesk_common.adapters.group_commit import Collector
from helpdesk_common.errors import EXPECTED_ERRORS, ValidationFailed
from helpdesk_common.adapters.metrics import EntrypointMetrics
from helpdesk_common.adapters.relay import OutboxRelay

from . import analysis, browsing, domain, indexing, search, ticket_suggestions
from .dependencies import SearchIndex
from .entrypoints import indexing_handler, ticket_handler
from .exceptions import concurrent_change
from .models import Outbox

log = logging.getLogger(__name__)

DB_URL = "KB_DB_URL"
SOURCE = "kb_search"
ANONYMOUS = {"actor": "anonymous", "role": "anonymous"}
IMPORT_BATCH = 500  # articles written per transaction by an import


def _viewer(viewer):
    return validate(Viewer, viewer if viewer is not None else ANONYMOUS, prefix="viewer.")


class KbSearchService:
    name = SOURCE

    db = Database(DB_URL)
    outbox = OutboxRelay(Outbox, DB_URL, source=SOURCE)
    index = SearchIndex()
    # Article events handled at the same moment share one index write and commit (group commit). An
    # index write fails as a whole (its lock, its server), so a failed batch fails each of its events,
    # which are retried on their own: no run_one. The linger lets the events of one prefetch join the
    # first batch, an index commit being expensive.
    index_batches = Collector("KB_INDEX_BATCH_MAX", max_batch=500, linger=0.02)
    # New tickets' suggestions that wait together are recorded in one transaction (group commit). A lone
    # ticket is handled at once; a backlog (the broker's prefetch is max_workers) forms batches.
    suggestion_batches = Collector("KB_SUGGEST_BATCH_MAX", max_batch=200)
    metrics = EntrypointMetrics()

    def _write(self, change, article_id=""):
        """Run ``change(session)`` in one transaction, rerun if it lost a race with another replica."""
        try:
            return run_in_transaction(self.db, change)
        except StaleDataError:
            raise concurrent_change(article_id)

    # --- articles ---------------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def create_article(self, article, viewer):
        """Write an article; returns the article view (``id``, ``version``, ``body_html``, ...)."""
        command, who = validate(NewArticle, article), _viewer(viewer)
        return self._write(lambda s: domain.create_article(s, command, who))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_article(self, article_id, viewer=None):
        who = _viewer(viewer)
        with self.db() as session:
            return domain.article_view(domain.find_article(session, article_id, who))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def update_article(self, article_id, changes, viewer):
        command, who = validate(ArticleChanges, changes), _viewer(viewer)
        return self._write(lambda s: domain.change_article(s, article_id, command, who), article_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def delete_article(self, article_id, viewer):
        who = _viewer(viewer)
        return self._write(lambda s: domain.delete_article(s, article_id, who), article_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_versions(self, article_id, viewer):
        who = _viewer(viewer)
        with self.db() as session:
            return domain.list_versions(session, article_id, who)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def import_articles(self, articles, viewer):
        """Create or update up to 5,000 articles: ``{"created", "updated", "ids"}``.

        Every article is checked before any is written; then they are written in batches of
        ``IMPORT_BATCH``, each batch with its events in one transaction. Returns without waiting for the
        index, which follows the events (see :mod:`helpdesk_kb_search.indexing`)."""
        command, who = validate(BulkImport, {"articles": articles}), _viewer(viewer)
        report = {"created": 0, "updated": 0, "ids": []}
        for start in range(0, len(command.articles), IMPORT_BATCH):
            batch = command.model_copy(update={"articles": command.articles[start:start + IMPORT_BATCH]})
            result = self._write(lambda s: domain.import_articles(s, batch, who))
            for key in ("created", "updated"):
                report[key] += result[key]
            report["ids"].extend(result["ids"])
        return report

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def draft_from_ticket(self, ticket, messages, viewer, language=None):
        """A draft article from a solved ticket (its view and messages, as the tickets service returns
        them): the question and the public answers, personal data removed. Returns the article view."""
        who = _viewer(viewer)
        if not isinstance(ticket, dict) or not isinstance(messages, list) or not all(
                isinstance(m, dict) for m in messages) or not {"subject", "description"} <= set(ticket):
            raise ValidationFailed("ticket must be a ticket view and messages a list of message views.")
        if language is not None and language not in LANGUAGES:
            raise ValidationFailed(f"language must be one of {', '.join(LANGUAGES)}.",
                                   details=[{"field": "language", "code": "invalid_choice"}])
        return self._write(lambda s: domain.draft_from_ticket(s, ticket, messages, who, language))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def browse(self, lang="en", category=None, viewer=None, size=10):
        """Categories and the most helpful articles, without a query (the help centre's home)."""
        query = validate(BrowseQuery, {"lang": lang, "category": category, "size": size})
        with self.db() as session:
            return browsing.browse(session, query.lang, query.category, _viewer(viewer), query.size)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def translations(self, article_id, viewer=None):
        """The article's versions in the other languages that the viewer may read."""
        who = _viewer(viewer)
        with self.db() as session:
            return browsing.translations(session, domain.find_article(session, article_id, who), who)

    # --- search and suggestions -------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def search(self, q, lang="en", filters=None, viewer=None, page=None):
        """Ranked hits: ``{"items": [{id, title, snippet, score, ...}], "total", "next_cursor", ...}``."""
        page = page or {}
        request = validate(SearchRequest, {"q": q, "lang": lang, "filters": filters or {},
                                           **{k: v for k, v in page.items() if v is not None}})
        return search.search(self.index, request, _viewer(viewer))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def suggest(self, text, lang="en", viewer=None, size=5, context="portal", ticket_number=None):
        """Articles for what is being typed; ``{"suggestion_id", "items"}`` (``suggestion_shown`` when any)."""
        request = validate(SuggestRequest, {"text": text, "lang": lang, "size": size, "context": context,
                                            "ticket_number": ticket_number})
        who = _viewer(viewer)
        items = search.suggest(self.index, request, who)
        suggestion_id = None
        if items:
            suggestion_id = self._write(lambda s: domain.suggestion_shown(s, request, items, who))
        return {"suggestion_id": suggestion_id, "items": items}

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def record_suggestions_shown(self, shown, viewer=None):
        """Portal suggestions a gateway answered from its cache of ``suggest`` answers, a batch at a time (one
        transaction): each recorded as ``suggest`` records one (``suggestion_shown``), under the id the gateway
        gave it. Answers how many were new."""
        command, who = validate(SuggestionsShown, {"shown": shown}), _viewer(viewer)
        return {"recorded": self._write(lambda s: domain.suggestions_shown(s, command.shown, who))}

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def record_suggestion_opened(self, suggestion_id, article_id, viewer=None, position=None):
        command = validate(SuggestionOpenedReport, {"suggestion_id": suggestion_id, "article_id": article_id,
                                              "position": position})
        who = _viewer(viewer)
        return self._write(lambda s: domain.suggestion_opened(s, command, who))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def record_suggestion_resolved(self, suggestion_id, viewer=None, article_id=None):
        """The portal visitor's question was answered by the suggestion: no ticket (deflection).
        ``{"suggestion_id", "recorded", "deflected_at", "article_id"}``; ``recorded`` false on a repeat."""
        if not isinstance(suggestion_id, str) or not 1 <= len(suggestion_id) <= 36:
            raise ValidationFailed("suggestion_id must be a suggestion's id.",
                                   details=[{"field": "suggestion_id", "code": "invalid_value"}])
        command = validate(SuggestionResolved, {"article_id": article_id})
        who = _viewer(viewer)
        return self._write(lambda s: domain.suggestion_resolved(s, suggestion_id, command, who))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def suggestions_for_ticket(self, number, viewer):
        """The articles suggested to a ticket's agents when it was created (staff only; internal ones too):
        ``{"ticket_number", "suggestion_id", "suggested_at", "items": [...]}``, ``suggested_at`` null
        until the ticket's ``ticket_created`` has been handled."""
        if not isinstance(number, str) or not 1 <= len(number) <= 40:
            raise ValidationFailed("number must be a ticket number.",
                                   details=[{"field": "number", "code": "invalid_value"}])
        who = _viewer(viewer)
        with self.db() as session:
            return domain.suggestions_for_ticket(session, number, who)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def analyze_texts(self, texts):
        """The knowledge base's terms of each text (``[{"language", "text"}]`` -> lists of stems), for services
        that compare wording the way search does (analytics groups similar tickets with them)."""
        return analysis.analyze_many(texts)

    @rpc
    def ping(self):
        """For health checks: answers when the service is up, its database and index reachable."""
        with self.db() as session:
            session.execute(text("SELECT 1"))
        return {"service": self.name, "ok": True, "backend": self.index.name, "documents": self.index.count()}

    # --- keeping the index in step ------------------------------------------------------------------

    def _on_article_event(self, envelope, handler):
        """Wait for this event's index batch (``helpdesk_common.group_commit``); raises if the batch
        failed, so the event is retried or parked like any other."""
        delivery = (envelope["id"], handler, envelope["data"]["article"]["id"])
        self.index_batches.submit(delivery, partial(indexing.apply_article_batch, self.db, self.index))

    @indexing_handler(SOURCE, "article_published")
    def index_published(self, envelope):
        self._on_article_event(envelope, "index_published")

    @indexing_handler(SOURCE, "article_updated")
    def index_updated(self, envelope):
        self._on_article_event(envelope, "index_updated")

    @indexing_handler(SOURCE, "article_archived")
    def index_archived(self, envelope):
        self._on_article_event(envelope, "index_archived")

    @ticket_handler("tickets", "ticket_created")
    def suggest_for_ticket(self, envelopes):
        """Attach the best matching articles (internal ones too) to new tickets, for their agents. The
        tickets the relay sent together are recorded in one transaction (:mod:`helpdesk_kb_search.ticket_suggestions`);
        a batch that fails is split and each event retried alone, so a bad event fails only itself. Single
        events (a split, a replay) that arrive together are joined by the group commit."""
        return self.suggestion_batches.handle(
            envelopes, partial(ticket_suggestions.suggest_for_tickets, self.db, self.index),
            partial(ticket_suggestions.suggest_for_ticket, self.db, self.index))
