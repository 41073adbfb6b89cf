"""The knowledge-base API: articles (agents write, everyone reads what they may), search and suggestions
(public: the portal's visitors search without a token; a token widens the view to internal articles)."""
import threading

from flask import Blueprint, current_app, jsonify

from helpdesk_common.contracts import validate
from helpdesk_common.contracts.kb import (ArticleChanges, ArticleSummary, ArticleVersionView, ArticleView, BrowsePage,
                                           BrowseQuery, BulkImport, DraftRequest,
                                           ImportReport, NewArticle, SearchPage, SearchQuery, SuggestionList,
                                           SuggestionOpenedReport, SuggestionResolution, SuggestionResolved,
                                           SuggestQuery, TicketSuggestions)

from .. import suggestions
from . import json_body, operation, query_args, services, viewer

bp = Blueprint("kb", __name__, url_prefix="/api/v1")

STAFF = ("admin", "agent")
WRITE_ERRORS = (400, 413, 415, 422)


@operation(bp, "/kb/articles", "POST", summary="Write an article", tag="knowledge base", body=NewArticle,
           answer=ArticleView, answer_status=201, roles=STAFF, errors=WRITE_ERRORS + (403, 409))
def create_article():
    """Markdown body, rendered to sanitised HTML. ``status: published`` makes it searchable."""
    article = json_body()
    validate(NewArticle, article)
    return jsonify(services().call("kb_search", "create_article", article, viewer())), 201


@operation(bp, "/kb/articles/<int:article_id>", "GET", summary="Read an article", tag="knowledge base",
           answer=ArticleView, errors=(404,), public=True)
def get_article(article_id):
    """Visitors and customers see published public articles; agents see every article."""
    return jsonify(read_article(article_id))


def read_article(article_id):
    return services().call("kb_search", "get_article", article_id, viewer())


@operation(bp, "/kb/articles/<int:article_id>", "PATCH", summary="Change an article", tag="knowledge base",
           body=ArticleChanges, answer=ArticleView, roles=STAFF, errors=(404, 409) + WRITE_ERRORS)
def update_article(article_id):
    """Only the fields given change; ``expected_version`` refuses to overwrite someone else's edit."""
    changes = json_body()
    validate(ArticleChanges, changes)
    return jsonify(services().call("kb_search", "update_article", article_id, changes, viewer()))


@operation(bp, "/kb/articles/<int:article_id>", "DELETE", summary="Delete an article", tag="knowledge base",
           roles=STAFF, errors=(404,))
def delete_article(article_id):
    return jsonify(services().call("kb_search", "delete_article", article_id, viewer()))


@operation(bp, "/kb/articles/<int:article_id>/versions", "GET", summary="An article's versions",
           tag="knowledge base", answer=ArticleVersionView, answer_is_list=True, roles=STAFF, errors=(404,))
def list_versions(article_id):
    return jsonify(services().call("kb_search", "list_versions", article_id, viewer()))


@operation(bp, "/kb/import", "POST", summary="Import articles in bulk", tag="knowledge base", body=BulkImport,
           answer=ImportReport, roles=("admin",), errors=WRITE_ERRORS + (403,))
def import_articles():
    """Up to 5,000 per call, written in batches without waiting for the index; an ``external_id`` seen
    before updates that article (safe to repeat)."""
    body = json_body()
    validate(BulkImport, body)
    return jsonify(services().call("kb_search", "import_articles", body["articles"], viewer()))


@operation(bp, "/kb/search", "GET", summary="Search the knowledge base", tag="knowledge base", query=SearchQuery,
           answer=SearchPage, errors=(422,), public=True)
def search():
    """Ranked hits with a highlighted snippet and a score, in the searcher's language first; page with
    ``cursor`` = the previous page's ``next_cursor``."""
    query = query_args(SearchQuery)
    return jsonify(run_search(query.q, query.lang, query.filters(), {"size": query.size, "cursor": query.cursor}))


def run_search(text, lang, filters, page):
    return services().call("kb_search", "search", text, lang, filters, viewer(), page)


@operation(bp, "/kb/suggest", "GET", summary="Articles for what is being typed", tag="knowledge base",
           query=SuggestQuery, answer=SuggestionList, errors=(422,), public=True)
def suggest():
    """For the portal's new-request form: the best public articles for the text so far."""
    query = query_args(SuggestQuery)
    return jsonify(run_suggest(query.text, query.lang, query.size))


def run_suggest(text, lang, size):
    """The portal's suggestions (public articles whoever asks), from this process's cache when the same text
    was asked lately (``suggestions.py`` says why and what stays exact)."""
    return _suggestions().suggest(text, lang, size, viewer())


_CREATING = threading.Lock()


def _suggestions():
    """Made at first use in each gateway process (gunicorn forks: a feed's thread does not survive a fork)."""
    found = current_app.extensions.get("helpdesk.suggestions")
    if found is None:
        with _CREATING:
            found = current_app.extensions.get("helpdesk.suggestions")
            if found is None:
                settings, pool = current_app.config["HELPDESK_SETTINGS"], services()
                if settings.suggest_cache_seconds > 0:
                    cache = suggestions.SuggestionCache(settings.suggest_cache_seconds, settings.suggest_cache_entries)
                    cache.feed = suggestions.ArticleFeed(settings.amqp_uri, cache.changed)
                else:
                    cache = suggestions.SuggestionCache(0, 0, feed=suggestions.NEVER)
                recorder = suggestions.ShownRecorder(lambda batch: pool.call("kb_search", "record_suggestions_shown",
                                                                             batch))
                found = current_app.extensions["helpdesk.suggestions"] = suggestions.Suggestions(
                    pool.call, cache, recorder)
    return found


@operation(bp, "/kb/suggestions/opened", "POST", summary="A suggested article was opened", tag="knowledge base",
           body=SuggestionOpenedReport, answer_status=201, errors=WRITE_ERRORS + (404,), public=True)
def suggestion_opened():
    """Tells analytics which suggestion helped (deflection)."""
    body = json_body()
    command = validate(SuggestionOpenedReport, body)
    return jsonify(record_opened(command.suggestion_id, command.article_id, command.position)), 201


def record_opened(suggestion_id, article_id, position):
    return services().call("kb_search", "record_suggestion_opened", suggestion_id, article_id, viewer(), position)


@operation(bp, "/kb/suggestions/<suggestion_id>/resolved", "POST", summary="Suggestions answered the question",
           tag="knowledge base", body=SuggestionResolved, answer=SuggestionResolution,
           errors=(404, 409) + WRITE_ERRORS, public=True)
def suggestion_resolved(suggestion_id):
    """The portal visitor found the answer in the suggestions shown (``suggestion_id`` from
    ``GET /api/v1/kb/suggest``) and gives up submitting a ticket: a deflection, announced once as
    ``suggestion_deflected``. The body is ``{}`` or ``{"article_id": ...}``, the suggested article that
    answered it. A repeat answers ``recorded: false``."""
    command = validate(SuggestionResolved, json_body())
    return jsonify(record_resolved(suggestion_id, command.article_id))


def record_resolved(suggestion_id, article_id):
    return services().call("kb_search", "record_suggestion_resolved", suggestion_id, viewer(), article_id)


@operation(bp, "/tickets/<number>/suggestions", "GET", summary="Articles suggested for a ticket",
           tag="knowledge base", answer=TicketSuggestions, roles=STAFF, errors=(404,))
def ticket_suggestions(number):
    """The knowledge-base articles found for the ticket when it was created, best first, internal ones
    included (agents only). ``suggested_at`` is null for the moment between the ticket's creation and
    the knowledge base handling it."""
    who = viewer()
    services().call("tickets", "get_ticket", number, who)  # 404 for a ticket the agent may not see
    return jsonify(services().call("kb_search", "suggestions_for_ticket", number, who))


@operation(bp, "/tickets/<number>/article-draft", "POST", summary="Turn a solved ticket into a draft article",
           tag="knowledge base", body=DraftRequest, answer=ArticleView, answer_status=201, roles=STAFF,
           errors=(404,) + WRITE_ERRORS)
def draft_from_ticket(number):
    """The question and the public answers, with email addresses and phone numbers removed, as a draft
    to review and publish."""
    command = validate(DraftRequest, json_body())
    who = viewer()
    ticket = services().call("tickets", "get_ticket", number, who)
    messages = services().call("tickets", "list_messages", number, who)
    return jsonify(services().call("kb_search", "draft_from_ticket", ticket, messages, who,
                                   command.language or ticket.get("language"))), 201


@operation(bp, "/kb/browse", "GET", summary="Categories and the most helpful articles", tag="knowledge base",
           query=BrowseQuery, answer=BrowsePage, errors=(422,), public=True)
def browse():
    """What the help centre shows before anyone searches: the categories of a language with their number of
    articles, and its articles (within ``category`` when given) that answered most visitors' questions."""
    return jsonify(read_browse(**query_args(BrowseQuery).model_dump()))


def read_browse(lang="en", category=None, size=10):
    return services().call("kb_search", "browse", lang, category, viewer(), size)


@operation(bp, "/kb/articles/<int:article_id>/translations", "GET", summary="An article in other languages",
           tag="knowledge base", answer=ArticleSummary, answer_is_list=True, errors=(404,), public=True)
def article_translations(article_id):
    """The same article in the other languages (its translation group) that the caller may read."""
    return jsonify(read_translations(article_id))


def read_translations(article_id):
    return services().call("kb_search", "translations", article_id, viewer())
