"""Searching and suggesting, as plain functions over a backend: who may see what, languages, fallback.

- Customers and portal visitors get public articles only; staff get internal ones too (and may narrow
  to one visibility).
- The searcher's language comes first: without an explicit language filter the search runs in ``lang``;
  only when that finds nothing at all does it look in the other languages (``fallback`` true).
"""
from helpdesk_common.contracts.kb import LANGUAGES

from .backends.base import BadCursor, SearchQuery
from .domain import is_staff, visibilities_for
from .exceptions import bad_cursor

SUGGEST_SNIPPETS = True


def _visibilities(filters, viewer):
    allowed = visibilities_for(viewer)
    if filters.visibility and is_staff(viewer):
        return [filters.visibility]
    return allowed


def search(backend, request, viewer):
    """One page of ranked hits: ``{"items": [...], "total", "next_cursor", "language", "fallback"}``."""
    filters = request.filters
    languages = list(filters.languages or [request.lang])
    query = SearchQuery(text=request.q, languages=languages, visibilities=_visibilities(filters, viewer),
                        types=filters.types, category=filters.category, tags=filters.tags, size=request.size,
                        cursor=request.cursor)
    try:
        results = backend.search(query)
        fallback = False
        # Nothing in the searcher's language (on a first page, or on the next pages of a fallback):
        # the other languages answer.
        if not results.hits and not filters.languages:
            query.languages = [lang for lang in LANGUAGES if lang != request.lang]
            results = backend.search(query)
            fallback = bool(results.hits)
    except BadCursor as error:
        raise bad_cursor(str(error)) from None
    return {"items": [hit.as_dict() for hit in results.hits], "total": results.total,
            "next_cursor": results.next_cursor, "language": request.lang, "fallback": fallback}


def suggest(backend, request, viewer):
    """The best matching articles for what someone is typing (public only, unless staff ask)."""
    visibilities = ["public"] if request.context == "portal" else visibilities_for(viewer)
    query = SearchQuery(text=request.text, languages=[request.lang], visibilities=visibilities,
                        size=request.size, prefix=True, highlight=SUGGEST_SNIPPETS)
    return [hit.as_dict() for hit in backend.search(query).hits]
