"""Search backends behind one interface (:class:`~helpdesk_kb_search.backends.base.SearchBackend`)."""
from .base import BadCursor, Hit, IndexDoc, Rebuild, Results, SearchBackend, SearchQuery

BACKENDS = ("embedded", "elasticsearch")


def make_backend(config):
    """The backend a service config asks for (``KB_SEARCH_BACKEND``)."""
    kind = (config.get("KB_SEARCH_BACKEND") or "embedded").lower()
    if kind == "embedded":
        from .embedded import EmbeddedBackend

        return EmbeddedBackend(config.get("KB_INDEX_DIR") or "var/kb-index")
    if kind == "elasticsearch":
        from .elastic import ElasticsearchBackend

        return ElasticsearchBackend(config.get("KB_ES_URL") or "http://127.0.0.1:9200",
                                    prefix=config.get("KB_ES_PREFIX") or "kb",
                                    refresh=config.get("KB_ES_REFRESH") or False)
    raise ValueError(f"KB_SEARCH_BACKEND must be one of {', '.join(BACKENDS)}, not {kind!r}")


__all__ = ["BACKENDS", "BadCursor", "Hit", "IndexDoc", "Rebuild", "Results", "SearchBackend", "SearchQuery",
           "make_backend"]
