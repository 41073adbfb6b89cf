"""The Elasticsearch backend, through the official ``elasticsearch`` client (8.x, for Elasticsearch 8).

Layout: one index per language, each with that language's built-in analyzer (``english``, ``dutch``,
``swedish``: stop words and Snowball stemming), behind an alias ``<prefix>-<lang>`` that every search
and write uses. A rebuild creates ``<prefix>-<lang>-<generation>`` indices, bulk-loads them, and swaps
every alias in one ``_aliases`` call (atomic: a search sees the old or the new index, never none), then
deletes the old indices.

Queries are built from the same synonym table as the embedded backend, with the same field boosts;
typo tolerance is Elasticsearch's own ``fuzziness: AUTO``; highlights come from the ``body`` field
(HTML-escaped, matches in ``<mark>``); paging is ``search_after`` on ``(_score, id)``.

Writes use external versioning (``version_type=external_gte`` with the article's version), so a stale
write arriving after a newer one is refused by Elasticsearch itself.
"""
import html
import logging
import uuid
from datetime import datetime, timezone

from elasticsearch import ApiError, Elasticsearch, NotFoundError, helpers

from .. import analysis
from .base import BadCursor, Hit, Rebuild, Results, SearchBackend, SearchQuery, check_languages
from .base import decode_cursor, encode_cursor

log = logging.getLogger(__name__)

ANALYZERS = {"en": "english", "nl": "dutch", "sv": "swedish"}
FIELDS = ["title^3", "keywords^2", "body"]
FUZZINESS = "AUTO:4,8"
SNIPPET_CHARS = analysis.SNIPPET_CHARS
BULK_CHUNK = 500


def index_body(lang):
    analyzer = ANALYZERS[lang]
    text = {"type": "text", "analyzer": analyzer}
    keyword = {"type": "keyword"}
    return {
        "settings": {"number_of_shards": 1, "number_of_replicas": 0},
        "mappings": {
            "dynamic": "strict",
            "properties": {
                "id": {"type": "long"}, "version": {"type": "long"},
                "title": text, "body": text, "keywords": text,
                "language": keyword, "type": keyword, "visibility": keyword, "category": keyword,
                "category_paths": keyword, "tags": keyword, "updated_at": {"type": "date"},
            },
        },
    }


def to_source(doc):
    keywords = " ".join(list(doc.tags) + (doc.category or "").replace("/", " ").split())
    return {"id": doc.id, "version": doc.version, "title": doc.title, "body": doc.text, "keywords": keywords,
            "language": doc.language, "type": doc.type, "visibility": doc.visibility, "category": doc.category,
            "category_paths": analysis.category_paths(doc.category), "tags": list(doc.tags),
            "updated_at": doc.updated_at}


def _generation():
    return datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S") + "-" + uuid.uuid4().hex[:6]


class ElasticsearchBackend(SearchBackend):
    name = "elasticsearch"

    def __init__(self, url_or_client, prefix="kb", refresh=False, request_timeout=10):
        if isinstance(url_or_client, Elasticsearch):
            self.client = url_or_client
        else:
            self.client = Elasticsearch(url_or_client, request_timeout=request_timeout,
                                        retry_on_timeout=True, max_retries=2)
        self.prefix = prefix
        # "wait_for" makes a write visible to searches before it returns (tests, small imports); in
        # production the index's refresh interval (1 s) does it.
        self.refresh = refresh if refresh not in ("false", "False", "") else False

    def alias(self, lang):
        return f"{self.prefix}-{lang}"

    # --- set-up -----------------------------------------------------------------------------------

    def ensure_ready(self):
        generation = _generation()
        for lang in ANALYZERS:
            if self.client.indices.exists_alias(name=self.alias(lang)):
                continue
            body = index_body(lang)
            try:
                self.client.indices.create(index=f"{self.alias(lang)}-{generation}",
                                           settings=body["settings"], mappings=body["mappings"],
                                           aliases={self.alias(lang): {}})
            except ApiError as error:  # another replica created it first
                if error.status_code != 400 or not self.client.indices.exists_alias(name=self.alias(lang)):
                    raise

    # --- writing ----------------------------------------------------------------------------------

    def _bulk(self, actions):
        ok, errors = helpers.bulk(self.client, actions, chunk_size=BULK_CHUNK, raise_on_error=False,
                                  refresh=self.refresh)
        real, self._conflicts = [], 0
        for item in errors:
            (op, result), = item.items()
            status = result.get("status")
            if status == 409:
                self._conflicts += 1
                continue
            if op == "delete" and status == 404:
                continue  # a newer version is indexed already / nothing to delete: both fine
            real.append(item)
        if real:
            raise RuntimeError(f"Elasticsearch refused {len(real)} writes, e.g. {real[0]}")
        return ok

    def _index_actions(self, docs, index_for):
        for doc in docs:
            yield {"_op_type": "index", "_index": index_for(doc.language), "_id": str(doc.id),
                   "version": doc.version, "version_type": "external_gte", "_source": to_source(doc)}

    def upsert(self, docs):
        docs = list(docs)
        if not docs:
            return 0
        # An article whose language changed must leave the other languages' indices.
        stale = [{"_op_type": "delete", "_index": self.alias(lang), "_id": str(doc.id)}
                 for doc in docs for lang in ANALYZERS if lang != doc.language]
        self._bulk(list(self._index_actions(docs, self.alias)) + stale)
        return len(docs) - self._conflicts

    def delete(self, ids):
        actions = [{"_op_type": "delete", "_index": self.alias(lang), "_id": str(doc_id)}
                   for doc_id in ids for lang in ANALYZERS]
        if actions:
            self._bulk(actions)

    def count(self):
        return self.client.count(index=",".join(self.alias(lang) for lang in ANALYZERS))["count"]

    def indexed_versions(self, ids):
        ids = [str(i) for i in ids]
        if not ids:
            return {}
        found = self.client.search(index=",".join(self.alias(lang) for lang in ANALYZERS),
                                   query={"ids": {"values": ids}}, size=len(ids) * len(ANALYZERS),
                                   source=["id", "version"])
        return {hit["_source"]["id"]: hit["_source"]["version"] for hit in found["hits"]["hits"]}

    # --- searching --------------------------------------------------------------------------------

    @staticmethod
    def _match(text, prefix, boost=1.0):
        match = {"query": text, "fields": FIELDS, "fuzziness": FUZZINESS, "prefix_length": 1,
                 "boost": boost}
        match["type"] = "bool_prefix" if prefix else "most_fields"
        return {"multi_match": match}

    def _language_query(self, lang, query):
        analyzed = analysis.analyze_query(lang, query.text, prefix=query.prefix)
        typed = " ".join([analyzed.surface[s] for s in analyzed.typed] + analyzed.joined)
        if analyzed.prefix:
            typed = f"{typed} {analyzed.prefix}".strip()
        if not typed:
            return None
        should = [self._match(typed, bool(analyzed.prefix))]
        for phrase in analysis.expansions(lang, query.text):
            should.append(self._match(phrase, False, analysis.SYNONYM_WEIGHT))
        return {"bool": {"filter": [{"term": {"language": lang}}], "should": should, "minimum_should_match": 1}}

    def search(self, query: SearchQuery):
        check_languages(query.languages)
        search_after = None
        if query.cursor:
            search_after = decode_cursor(query.cursor, self.name).get("a")
            if not isinstance(search_after, list) or len(search_after) != 2:
                raise BadCursor("this cursor is not one this service handed out")
        per_language = [q for q in (self._language_query(lang, query) for lang in query.languages) if q]
        if not per_language:
            return Results(hits=[], total=0)
        filters = [{"terms": {"visibility": list(query.visibilities)}}]
        if query.types:
            filters.append({"terms": {"type": list(query.types)}})
        if query.category:
            filters.append({"term": {"category_paths": query.category}})
        if query.tags:
            filters.append({"terms": {"tags": list(query.tags)}})
        body = {
            "query": {"bool": {"must": [{"bool": {"should": per_language, "minimum_should_match": 1}}],
                               "filter": filters}},
            "sort": [{"_score": {"order": "desc"}}, {"id": {"order": "asc"}}],
            "size": query.size + 1,
            "track_total_hits": True,
            "_source": {"excludes": ["keywords"]},
        }
        if query.highlight:
            body["highlight"] = {
                "pre_tags": ["<mark>"], "post_tags": ["</mark>"], "encoder": "html",
                "fields": {"body": {"fragment_size": SNIPPET_CHARS, "number_of_fragments": 1,
                                    "no_match_size": SNIPPET_CHARS}},
            }
        if search_after is not None:
            body["search_after"] = search_after
        indices = ",".join(self.alias(lang) for lang in query.languages)
        response = self.client.search(index=indices, **body)
        raw_hits = response["hits"]["hits"]
        hits = []
        for raw in raw_hits[:query.size]:
            source = raw["_source"]
            fragments = (raw.get("highlight") or {}).get("body") or []
            if fragments:
                snippet = fragments[0]
            elif query.highlight:
                text = source.get("body") or ""
                snippet = html.escape(text[:SNIPPET_CHARS]) + ("…" if len(text) > SNIPPET_CHARS else "")
            else:
                snippet = ""
            hits.append(Hit(id=int(source["id"]), score=float(raw.get("_score") or raw["sort"][0]),
                            title=source["title"], snippet=snippet, language=source["language"],
                            type=source["type"], visibility=source["visibility"],
                            category=source.get("category"), tags=source.get("tags") or []))
        next_cursor = None
        if len(raw_hits) > query.size:
            next_cursor = encode_cursor({"k": self.name, "a": raw_hits[query.size - 1]["sort"]})
        total = response["hits"]["total"]
        return Results(hits=hits, total=total["value"] if isinstance(total, dict) else int(total),
                       next_cursor=next_cursor)

    # --- rebuilding -------------------------------------------------------------------------------

    def rebuild(self):
        return _ElasticRebuild(self)

    def drop_all(self):
        """Delete every index of this prefix (tests and benchmarks)."""
        for lang in ANALYZERS:
            for index in self.client.indices.get(index=f"{self.alias(lang)}-*", expand_wildcards="open"):
                self.client.indices.delete(index=index, ignore_unavailable=True)

    def close(self):
        self.client.close()


class _ElasticRebuild(Rebuild):
    def __init__(self, backend: ElasticsearchBackend):
        self.backend = backend
        self.generation = _generation()
        self.indices = {lang: f"{backend.alias(lang)}-{self.generation}" for lang in ANALYZERS}
        for lang, index in self.indices.items():
            body = index_body(lang)
            backend.client.indices.create(index=index, settings=body["settings"], mappings=body["mappings"])

    def add(self, docs):
        docs = list(docs)
        self.backend._bulk(list(self.backend._index_actions(docs, self.indices.__getitem__)))
        return len(docs)

    def delete(self, ids):
        actions = [{"_op_type": "delete", "_index": index, "_id": str(doc_id)}
                   for doc_id in ids for index in self.indices.values()]
        if actions:
            self.backend._bulk(actions)

    def swap(self):
        client = self.backend.client
        client.indices.refresh(index=",".join(self.indices.values()))
        actions, old = [], []
        for lang, index in self.indices.items():
            alias = self.backend.alias(lang)
            try:
                current = list(client.indices.get_alias(name=alias).keys())
            except NotFoundError:
                current = []
            for previous in current:
                actions.append({"remove": {"index": previous, "alias": alias}})
                old.append(previous)
            actions.append({"add": {"index": index, "alias": alias}})
        client.indices.update_aliases(actions=actions)  # one call: all aliases move at once
        # The indices just replaced stay until the next rebuild: a search that resolved the alias a
        # moment before the swap still finds its index. Older generations go now.
        keep = set(old) | set(self.indices.values())
        for lang in self.indices:
            for index in client.indices.get(index=f"{self.backend.alias(lang)}-*", expand_wildcards="open"):
                if index not in keep:
                    client.indices.delete(index=index, ignore_unavailable=True)

    def abort(self):
        for index in self.indices.values():
            self.backend.client.indices.delete(index=index, ignore_unavailable=True)
