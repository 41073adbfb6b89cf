"""Contracts of the knowledge-base service (``kb_search``): commands it accepts and the views it answers with.

Articles are written in Markdown; the service renders them to sanitised HTML (``body_html``). A category is
a path in a tree (``billing/invoices``): filtering on ``billing`` finds articles of every sub-category.
Translations of one article share a ``translation_group``.
"""
from datetime import datetime
from typing import Annotated, Any, Literal, Optional

from pydantic import Field, StringConstraints

from . import MAX_RECORD_ID, Contract, RecordId, View
from .tickets import Change, Viewer

__all__ = [
    "ArticleType", "Language", "ArticleStatus", "Visibility", "LANGUAGES", "NewArticle", "ArticleChanges",
    "SearchFilters", "SearchRequest", "SuggestRequest", "SuggestionOpenedReport", "BulkImport", "Viewer",
    "ArticleView", "ArticleVersionView", "SearchHit", "SearchPage", "SuggestionList", "ImportReport", "Change",
]

LANGUAGES = ("en", "nl", "sv")
ArticleType = Literal["article", "faq", "tutorial"]
Language = Literal["en", "nl", "sv"]
ArticleStatus = Literal["draft", "published", "archived"]
Visibility = Literal["public", "internal"]

Title = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Body = Annotated[str, StringConstraints(min_length=1, max_length=200_000)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=r"^[\w][\w .:/-]*$")]
CategoryPath = Annotated[str, StringConstraints(
    min_length=1, max_length=200, to_lower=True, pattern=r"^[\w][\w-]*(/[\w][\w-]*)*$")]
ArticleId = RecordId
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
QueryText = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Cursor = Annotated[str, StringConstraints(max_length=200)]


class NewArticle(Contract):
    """An article, FAQ or tutorial. ``translation_of`` names an article this one translates."""

    title: Title
    body: Body
    language: Language
    type: ArticleType = "article"
    category: Optional[CategoryPath] = None
    tags: Annotated[list[Tag], Field(max_length=50)] = []
    visibility: Visibility = "public"
    status: ArticleStatus = "draft"
    translation_of: Optional[ArticleId] = None
    external_id: Optional[ExternalId] = None


class ArticleChanges(Contract):
    """A partial update: only the fields given change. ``expected_version`` guards against lost updates."""

    title: Optional[Title] = None
    body: Optional[Body] = None
    language: Optional[Language] = None
    type: Optional[ArticleType] = None
    category: Optional[CategoryPath] = None
    tags: Optional[Annotated[list[Tag], Field(max_length=50)]] = None
    visibility: Optional[Visibility] = None
    status: Optional[ArticleStatus] = None
    expected_version: Optional[Annotated[int, Field(ge=1, le=MAX_RECORD_ID)]] = None
    note: Optional[Annotated[str, StringConstraints(max_length=500)]] = None


class SearchFilters(Contract):
    """Narrow a search. ``languages`` defaults to the searcher's language; the others are exact matches
    (``category`` also matches its sub-categories). ``visibility`` is only honoured for staff."""

    languages: Optional[Annotated[list[Language], Field(min_length=1, max_length=3)]] = None
    category: Optional[CategoryPath] = None
    types: Optional[Annotated[list[ArticleType], Field(min_length=1, max_length=3)]] = None
    tags: Optional[Annotated[list[Tag], Field(min_length=1, max_length=20)]] = None
    visibility: Optional[Visibility] = None


class SearchRequest(Contract):
    q: QueryText
    lang: Language = "en"
    filters: SearchFilters = SearchFilters()
    size: Annotated[int, Field(ge=1, le=50)] = 10
    cursor: Optional[Cursor] = None


class SuggestRequest(Contract):
    """What a customer has typed so far (the subject and start of the description, say)."""

    text: Annotated[str, StringConstraints(min_length=1, max_length=5_000)]
    lang: Language = "en"
    size: Annotated[int, Field(ge=1, le=10)] = 5
    context: Literal["portal", "ticket"] = "portal"
    ticket_number: Optional[Annotated[str, StringConstraints(max_length=40)]] = None


class ShownItem(Contract):
    id: ArticleId
    score: float = 0.0


class SuggestionShownReport(Contract):
    """A portal suggestion a gateway answered from its cache (``record_suggestions_shown``): the id it gave
    the visitor, the articles shown and their scores; nothing of the typed text but its length."""

    suggestion_id: Annotated[str, StringConstraints(min_length=1, max_length=36, pattern=r"^[0-9a-f-]+$")]
    lang: Language = "en"
    query_length: Annotated[int, Field(ge=1, le=5_000)]
    items: Annotated[list[ShownItem], Field(min_length=1, max_length=10)]


class SuggestionsShown(Contract):
    shown: Annotated[list[SuggestionShownReport], Field(min_length=1, max_length=1000)]


class SuggestionOpenedReport(Contract):
    """The portal reports that a visitor opened a suggested article (announced as ``suggestion_opened``)."""

    suggestion_id: Annotated[str, StringConstraints(min_length=1, max_length=36)]
    article_id: ArticleId
    position: Optional[Annotated[int, Field(ge=1, le=100)]] = None


class BulkImport(Contract):
    """Up to 5,000 articles per call; an ``external_id`` already known updates that article instead."""

    articles: Annotated[list[NewArticle], Field(min_length=1, max_length=5000)]


class ArticleView(View):
    id: int
    external_id: Optional[str] = None
    title: str
    body: str
    body_html: str
    language: str
    type: str
    category: Optional[str] = None
    tags: list[str] = []
    visibility: str
    status: str
    author: str
    translation_group: str
    version: int
    created_at: datetime
    updated_at: datetime
    published_at: Optional[datetime] = None
    archived_at: Optional[datetime] = None


class ArticleVersionView(View):
    version: int
    at: datetime
    actor: str
    note: Optional[str] = None
    changes: list[Change] = []
    snapshot: dict[str, Any]


class SearchHit(View):
    id: int
    title: str
    snippet: str
    score: float
    language: str
    type: str
    category: Optional[str] = None
    tags: list[str] = []
    visibility: str


class SearchPage(View):
    items: list[SearchHit]
    total: int
    next_cursor: Optional[str] = None
    language: str
    fallback: bool = False


class SuggestionList(View):
    suggestion_id: Optional[str] = None
    items: list[SearchHit]


class ImportReport(View):
    created: int
    updated: int
    ids: list[int]


class SearchQuery(Contract):
    """``GET /api/v1/kb/search`` query string: one value per filter (``tags`` comma-separated)."""

    q: QueryText
    lang: Language = "en"
    category: Optional[CategoryPath] = None
    type: Optional[ArticleType] = None
    tags: Optional[Annotated[str, StringConstraints(max_length=500)]] = None
    visibility: Optional[Visibility] = None
    size: Annotated[int, Field(ge=1, le=50)] = 10
    cursor: Optional[Cursor] = None

    def filters(self):
        """The service's SearchFilters as a dict."""
        found = {"category": self.category, "types": [self.type] if self.type else None,
                 "tags": [t.strip() for t in self.tags.split(",") if t.strip()] if self.tags else None,
                 "visibility": self.visibility}
        return {key: value for key, value in found.items() if value}


class SuggestQuery(Contract):
    """``GET /api/v1/kb/suggest`` query string, sent every few keystrokes by the portal."""

    text: Annotated[str, StringConstraints(min_length=1, max_length=5_000)]
    lang: Language = "en"
    size: Annotated[int, Field(ge=1, le=10)] = 5


class DraftRequest(Contract):
    """Turn a solved ticket into a draft article (``language``: the article's; default the ticket's)."""

    language: Optional[Language] = None


# --- suggestions kept per ticket, and deflection (appended) -----------------------------------------

SuggestionId = Annotated[str, StringConstraints(min_length=1, max_length=36)]


class SuggestionResolved(Contract):
    """``POST /api/v1/kb/suggestions/{id}/resolved``: the portal visitor's question was answered by the
    suggestions (``article_id``: the one that did, if the portal knows), so no ticket is submitted."""

    article_id: Optional[ArticleId] = None


class SuggestionResolution(View):
    """The answer to a deflection: ``recorded`` is false when the suggestion had been resolved before
    (the call is safe to repeat: one ``suggestion_deflected`` event per suggestion)."""

    suggestion_id: str
    recorded: bool
    deflected_at: datetime
    article_id: Optional[int] = None


class SuggestedArticle(View):
    """An article suggested for a ticket, as it was ranked then (``position``, ``score``, ``snippet``)
    and as it is now (title, visibility, ...)."""

    id: int
    position: int
    title: str
    snippet: str = ""
    score: float
    language: str
    type: str
    category: Optional[str] = None
    tags: list[str] = []
    visibility: str


class TicketSuggestions(View):
    """The articles suggested to the agents of a ticket when it was created, best first (internal ones
    included). ``suggested_at`` is null until the knowledge base has handled the new ticket."""

    ticket_number: str
    suggestion_id: Optional[str] = None
    suggested_at: Optional[datetime] = None
    items: list[SuggestedArticle] = []


__all__ += ["SuggestionResolved", "SuggestionResolution", "SuggestedArticle", "TicketSuggestions"]


# --- Events: the data of the knowledge base service's events (their catalogue: ``helpdesk_common.events``) -------

class ArticlePublished(View):
    article: ArticleView


class ArticleUpdated(View):
    article: ArticleView
    changes: list[Change]


class ArticleArchived(View):
    article: ArticleView
    deleted: bool = False


class SuggestionShown(View):
    suggestion_id: str
    context: str
    language: str
    query_length: int
    article_ids: list[int]
    ticket_number: Optional[str] = None


class SuggestionOpened(View):
    suggestion_id: str
    article_id: int
    position: Optional[int] = None


class SuggestionDeflected(View):
    suggestion_id: str
    language: str
    article_ids: list[int]  # the articles that were shown, best first
    article_id: Optional[int] = None  # the one that answered the question, when the portal says so
    shown_at: datetime
    deflected_at: datetime


# --- browsing, for the portal's help centre (appended) -----------------------------------------------

class BrowseQuery(Contract):
    """``GET /api/v1/kb/browse``: categories and the most helpful articles of a language (and category)."""

    lang: Language = "en"
    category: Optional[CategoryPath] = None
    size: Annotated[int, Field(ge=1, le=50)] = 10


class ArticleSummary(View):
    id: int
    title: str
    language: str
    type: str
    category: Optional[str] = None
    published_at: Optional[datetime] = None


class CategoryCount(View):
    category: str
    articles: int


class BrowsePage(View):
    language: str
    category: Optional[str] = None
    categories: list[CategoryCount]
    popular: list[ArticleSummary]
    """Most deflections first (visitors said the article answered their question), then the newest."""
