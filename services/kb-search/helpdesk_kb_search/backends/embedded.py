"""The embedded search backend: tantivy index files on local disk, no server. The default for ``make run``.

Why tantivy, not SQLite FTS5 + a Snowball stemmer
-------------------------------------------------
Both were measured on this project's machines (2 cores) by ``bench/kb_search.py --fts5``: 100,000
generated articles in en/nl/sv (the labelled collection's vocabulary, 4-8 word titles, 60-160 word
bodies), the same Snowball analysis for both, 1,000 queries (the labelled ones and 2-5 word ones), one
at a time, best 10 with BM25:

==============================  ==============  ==========  ==========
backend                         index 100,000   p50 query   p99 query
==============================  ==============  ==========  ==========
tantivy 0.27 (with snippets)    11.5 s          1.3 ms      3.4 ms
SQLite FTS5 + bm25() (no snip)  6.1 s           35 ms       78 ms
==============================  ==============  ==========  ==========

FTS5 ranks by computing ``bm25()`` for every matching row before sorting, so a query with one common word
costs time in proportion to the number of matches. tantivy does too here (boosted clauses and the total
count keep it from skipping blocks), but scores a posting far faster. tantivy also offers
Levenshtein-automaton fuzzy terms (typo tolerance) and fast term statistics (``doc_freq``,
``terms_with_prefix``) that suggestions and typo detection use. ``bench/kb_search.py`` reports the
figures of the backend as built.

What a query costs, then, is the postings it walks. Three choices keep them few (profiled with cProfile
at 100,000 articles): synonyms are expanded when a document is indexed, so a query adds one term per
synonym group it mentions (:func:`helpdesk_kb_search.analysis.document_terms`); each language has its own text
fields, so no language filter is intersected with the words (it cost more than the words); and a word
in more than ``COMMON_FRACTION`` of its language's bodies is matched in titles only. Visibility is an
exclusion of the few articles a viewer may not see rather than an intersection with the many they may.

Analysis is done in Python (:mod:`helpdesk_kb_search.analysis`, Snowball stems from PyStemmer) and the index
stores the stems, split on whitespace, and the keys of the synonym groups the text mentions: indexing and
querying share one analyzer, stop-word list and synonym table, and snippets are cut from the original
text with the same stems. A change to the analysis or the synonym table takes effect for the articles
indexed after it: run ``kb-reindex`` after deploying one.

Files and generations
---------------------
``<directory>/CURRENT`` names the generation searches use (``gen-...`` folders beside it). A rebuild
writes a new generation and replaces ``CURRENT`` atomically (``os.replace``); every process notices the
change on its next call (one ``stat``) and opens the new generation. The previous generation is kept
until the next rebuild, so a process that has not yet noticed keeps answering. tantivy allows one writer
per generation across processes: writers are opened per batch and closed at once, and a writer that
finds the lock taken waits for it (bounded).
"""
import json
import logging
import os
import shutil
import threading
import time
import typing
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone

import tantivy

from helpdesk_common.contracts.kb import LANGUAGES, Visibility

from .. import analysis
from .base import BadCursor, Hit, IndexDoc, Rebuild, Results, SearchBackend, SearchQuery, check_languages
from .base import decode_cursor, encode_cursor

log = logging.getLogger(__name__)

# Field boosts: a word in the title says more about an article than the same word in its body. Tags and
# the category's words are indexed with the title (one field less per query term keeps queries fast).
TITLE_BOOST, BODY_BOOST = 3.0, 1.0
# The words of each language have fields of their own (title_en, body_en, ...): a query then needs no
# language filter, whose intersection with the words' postings cost more than the words themselves
# (profiled at 100,000 articles: half of tantivy's time per query went to the language and visibility
# filters), and word statistics (IDF, how common a word is) are those of its language.
LANGUAGE_FIELDS = {lang: ((f"title_{lang}", TITLE_BOOST), (f"body_{lang}", BODY_BOOST)) for lang in LANGUAGES}
# Generations built before LANGUAGE_FIELDS have one pair of fields for every language (and a filter on
# ``lang``); they are still searched so until ``kb-reindex`` rebuilds them.
SHARED_FIELDS = (("title_t", TITLE_BOOST), ("body_t", BODY_BOOST))
# A fuzzy (typo-corrected) term scores a constant per field. With word statistics per language (fewer
# articles, so lower BM25 scores) 2.5 outweighed the words typed correctly; 1.0-2.0 rank the same on
# queries.json, queries_dev.json and queries_fresh.json (MRR@10 0.93/0.94/0.76 -> 0.94/0.94/0.78).
FUZZY_SCORE = 1.5
# Dutch and Swedish write compounds as one word: an unknown one is split into known parts.
COMPOUNDING = ("nl", "sv")
COMPOUND_WEIGHT = 0.8
# A query word found in more than this share of all bodies is matched in titles only (see _text_query).
COMMON_FRACTION = 0.2
PREFIX_COMPLETIONS = 3
PREFIX_WEIGHT = 0.8
WRITER_HEAP = 50_000_000
REBUILD_HEAP = 200_000_000
LOCK_WAIT_S = 60.0
RELOAD_INTERVAL_S = 0.25
VISIBILITIES = typing.get_args(Visibility)


def build_schema():
    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field("id", stored=True, indexed=True, fast=True)
    builder.add_unsigned_field("version", stored=True)
    for name in ("lang", "type", "visibility", "category", "tags"):
        builder.add_text_field(name, tokenizer_name="raw", index_option="basic")
    for name, _boost in SHARED_FIELDS:  # no longer written (see SHARED_FIELDS)
        builder.add_text_field(name, tokenizer_name="whitespace", index_option="freq")
    builder.add_bytes_field("source", stored=True, indexed=False)
    # Added after the fields above, which so keep their numbers in the generations built before.
    for fields in LANGUAGE_FIELDS.values():
        for name, _boost in fields:
            builder.add_text_field(name, tokenizer_name="whitespace", index_option="freq")
    return builder.build()


SCHEMA = build_schema()


def to_document(doc: IndexDoc, fields=None):
    """The tantivy document of ``doc``; ``fields`` (title, body) default to those of its language."""
    lang = doc.language
    keywords = " ".join(list(doc.tags) + (doc.category or "").replace("/", " ").split())
    source = {"title": doc.title, "text": doc.text, "language": lang, "type": doc.type,
              "visibility": doc.visibility, "category": doc.category, "tags": list(doc.tags)}
    document = tantivy.Document()
    document.add_unsigned("id", doc.id)
    document.add_unsigned("version", doc.version)
    document.add_text("lang", lang)
    document.add_text("type", doc.type)
    document.add_text("visibility", doc.visibility)
    for path in analysis.category_paths(doc.category):
        document.add_text("category", path)
    for tag in doc.tags:
        document.add_text("tags", tag)
    (title_field, _), (body_field, _) = fields or LANGUAGE_FIELDS[lang]
    document.add_text(title_field, " ".join(analysis.document_terms(lang, f"{doc.title} {keywords}")))
    document.add_text(body_field, " ".join(analysis.document_terms(lang, doc.text)))
    document.add_bytes("source", json.dumps(source, ensure_ascii=False).encode())
    return document


def _term(field, value):
    return tantivy.Query.term_query(SCHEMA, field, value)


def _any_of(field, values):
    return tantivy.Query.const_score_query(
        tantivy.Query.boolean_query([(tantivy.Occur.Should, _term(field, v)) for v in values]), 0.0)


class EmbeddedBackend(SearchBackend):
    name = "embedded"

    def __init__(self, directory):
        self.directory = os.path.abspath(directory)
        # Writers take turns on _lock, and may wait there for tantivy's lock held by another process (a
        # rebuild's catch-up). Reopening the current generation has a lock of its own, so a search never
        # queues behind a waiting writer.
        self._lock = threading.RLock()
        self._open_lock = threading.Lock()
        self._generation = None
        self._pointer_stamp = None
        self._layout = (None, False)  # (generation, whether it has fields per language)
        self._index = None
        self._reloaded_at = 0.0

    # --- generations -----------------------------------------------------------------------------

    @property
    def _pointer(self):
        return os.path.join(self.directory, "CURRENT")

    def _new_generation(self):
        name = "gen-" + datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S") + "-" + uuid.uuid4().hex[:8]
        path = os.path.join(self.directory, name)
        os.makedirs(path)
        tantivy.Index(SCHEMA, path=path)  # creates the (empty) index files
        return name

    def _point_to(self, name):
        tmp = f"{self._pointer}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "w") as stream:
            stream.write(name)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, self._pointer)

    def ensure_ready(self):
        os.makedirs(self.directory, exist_ok=True)
        with self._lock:
            if not os.path.exists(self._pointer):
                self._point_to(self._new_generation())
        self._current()

    def _current(self):
        """The index of the current generation, reopened when another process swapped it."""
        try:
            stat = os.stat(self._pointer)
        except FileNotFoundError:
            self.ensure_ready()
            stat = os.stat(self._pointer)
        stamp = (stat.st_ino, stat.st_mtime_ns)
        if stamp != self._pointer_stamp or self._index is None:
            with self._open_lock:
                with open(self._pointer) as stream:
                    name = stream.read().strip()
                if name != self._generation or self._index is None:
                    self._index = tantivy.Index.open(os.path.join(self.directory, name))
                    self._generation = name
                    self._reloaded_at = time.monotonic()
                self._pointer_stamp = stamp
        elif time.monotonic() - self._reloaded_at > RELOAD_INTERVAL_S:
            # Commits made by other processes (a rebuild's catch-up) become visible.
            self._index.reload()
            self._reloaded_at = time.monotonic()
        return self._index

    @contextmanager
    def _writer(self, index, heap=WRITER_HEAP, threads=1):
        """A writer on ``index``, waiting (bounded) while another process holds the generation's lock."""
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                writer = index.writer(heap, threads)
                break
            except ValueError as error:
                if "LockBusy" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        try:
            yield writer
            writer.commit()
        except BaseException:
            writer.rollback()
            raise
        finally:
            writer.wait_merging_threads()  # releases the lock
        index.reload()
        self._reloaded_at = time.monotonic()

    # --- writing ----------------------------------------------------------------------------------

    def upsert(self, docs):
        docs = list(docs)
        if not docs:
            return 0
        with self._lock:
            index = self._current()
            with self._writer(index) as writer:
                index.reload()
                searcher = index.searcher()
                known = self._versions(searcher, [d.id for d in docs])
                written = 0
                for doc in docs:
                    if known.get(doc.id, 0) > doc.version:
                        continue  # a newer version is already indexed: this one is stale
                    writer.delete_documents_by_query(_term("id", doc.id))
                    # In a generation from before the fields per language, the fields it has.
                    writer.add_document(to_document(doc, self._fields(searcher, doc.language)[0]))
                    written += 1
            return written

    def delete(self, ids):
        ids = list(ids)
        if not ids:
            return
        with self._lock:
            index = self._current()
            with self._writer(index) as writer:
                for doc_id in ids:
                    writer.delete_documents_by_query(_term("id", int(doc_id)))

    @staticmethod
    def _versions(searcher, ids):
        found = {}
        if not ids:
            return found
        query = tantivy.Query.term_set_query(SCHEMA, "id", [int(i) for i in ids])
        for _score, address in searcher.search(query, len(ids), count=False).hits:
            doc = searcher.doc(address)
            found[doc.get_first("id")] = doc.get_first("version")
        return found

    def indexed_versions(self, ids):
        index = self._current()
        return self._versions(index.searcher(), list(ids))

    def count(self):
        return self._current().searcher().num_docs

    # --- searching --------------------------------------------------------------------------------

    def _fields(self, searcher, lang):
        """``(fields with boosts, whether a filter on lang is needed)`` in the current generation."""
        if self._layout[0] != self._generation:
            try:
                searcher.doc_freq(LANGUAGE_FIELDS["en"][0][0], "")
                self._layout = (self._generation, True)
            except ValueError:  # built before the fields per language
                self._layout = (self._generation, False)
        if self._layout[1]:
            return LANGUAGE_FIELDS[lang], False
        return SHARED_FIELDS, True

    def _text_query(self, searcher, analyzed, fields=None):
        fields_and_boosts = fields or LANGUAGE_FIELDS[analyzed.lang]
        (title, _), (body, _) = fields_and_boosts
        clauses = []
        # Common among the articles of the query's language (its words rarely occur in the others): a
        # third of the index is Swedish, so a share of all articles would let a word in most Swedish
        # bodies pass as uncommon.
        common = max(1000, searcher.doc_freq("lang", analyzed.lang) * COMMON_FRACTION)
        for stem, weight in analyzed.terms.items():
            typo = (stem in analyzed.typed and len(analyzed.surface.get(stem, stem)) >= 4
                    and searcher.doc_freq(body, stem) == 0 and searcher.doc_freq(title, stem) == 0)
            if typo and analyzed.lang in COMPOUNDING:
                known = (lambda term: searcher.doc_freq(body, term) > 0 or searcher.doc_freq(title, term) > 0)
                parts = analysis.compound_parts(analyzed.lang, analyzed.surface.get(stem, stem), known)
                for part in parts:
                    for field, boost in fields_and_boosts:
                        clauses.append((tantivy.Occur.Should, tantivy.Query.boost_query(
                            _term(field, part), boost * weight * COMPOUND_WEIGHT)))
                if parts:
                    continue
            if typo:
                distance = 1 if len(analyzed.surface.get(stem, stem)) <= 7 else 2
                for field, boost in fields_and_boosts:
                    fuzzy = tantivy.Query.fuzzy_term_query(SCHEMA, field, stem, distance, True, False)
                    clauses.append((tantivy.Occur.Should, tantivy.Query.boost_query(
                        tantivy.Query.const_score_query(fuzzy, FUZZY_SCORE), boost * weight)))
                continue
            fields = fields_and_boosts
            if len(analyzed.terms) > 1 and searcher.doc_freq(body, stem) > common:
                # A word in most articles barely moves the ranking in the body but costs most of the
                # time there: it counts in titles (and tags) only.
                fields = fields_and_boosts[:1]
            for field, boost in fields:
                clauses.append((tantivy.Occur.Should,
                                tantivy.Query.boost_query(_term(field, stem), boost * weight)))
        for key, weight in analyzed.synonyms.items():
            # One term per synonym group: the documents carry the keys of the groups they mention.
            fields = fields_and_boosts
            if searcher.doc_freq(body, key) > common:
                fields = fields_and_boosts[:1]
            for field, boost in fields:
                clauses.append((tantivy.Occur.Should, tantivy.Query.boost_query(_term(field, key), boost * weight)))
        if analyzed.prefix:
            for term, _count in searcher.terms_with_prefix(title, analyzed.prefix, limit=PREFIX_COMPLETIONS):
                for field, boost in fields_and_boosts:
                    clauses.append((tantivy.Occur.Should,
                                    tantivy.Query.boost_query(_term(field, term), boost * PREFIX_WEIGHT)))
        if not clauses:
            return None
        return tantivy.Query.boolean_query(clauses)

    def search(self, query: SearchQuery):
        check_languages(query.languages)
        offset = 0
        if query.cursor:
            offset = decode_cursor(query.cursor, self.name).get("o", 0)
            if not isinstance(offset, int) or offset < 0:
                raise BadCursor("this cursor is not one this service handed out")
        index = self._current()
        searcher = index.searcher()
        if searcher.num_docs == 0:
            # Nothing to find (a new helpdesk's knowledge base): every word of the query would be taken for a
            # typo and searched fuzzily, a new ticket's suggestions costing more than opening the ticket.
            return Results(hits=[], total=0)
        per_language, analyzed_by_lang = [], {}
        for lang in query.languages:
            analyzed = analysis.analyze_query(lang, query.text, prefix=query.prefix)
            fields, filter_language = self._fields(searcher, lang)
            text_query = self._text_query(searcher, analyzed, fields)
            if text_query is None:
                continue
            analyzed_by_lang[lang] = analyzed
            if filter_language:
                text_query = tantivy.Query.boolean_query([
                    (tantivy.Occur.Must, tantivy.Query.const_score_query(_term("lang", lang), 0.0)),
                    (tantivy.Occur.Must, text_query)])
            per_language.append((tantivy.Occur.Should, text_query))
        if not per_language:
            return Results(hits=[], total=0)
        text = per_language[0][1] if len(per_language) == 1 else tantivy.Query.boolean_query(per_language)
        must = [(tantivy.Occur.Must, text)]
        excluded = [v for v in VISIBILITIES if v not in query.visibilities]
        if set(query.visibilities) <= set(VISIBILITIES):
            # Leaving out the few the viewer may not see costs less than keeping the many they may
            # (every indexed article has one of VISIBILITIES: they are validated).
            if excluded:
                must.append((tantivy.Occur.MustNot, _any_of("visibility", excluded)))
        else:
            must.append((tantivy.Occur.Must, _any_of("visibility", query.visibilities)))
        if query.types:
            must.append((tantivy.Occur.Must, _any_of("type", query.types)))
        if query.category:
            must.append((tantivy.Occur.Must, _any_of("category", [query.category])))
        if query.tags:
            must.append((tantivy.Occur.Must, _any_of("tags", query.tags)))
        result = searcher.search(tantivy.Query.boolean_query(must), query.size + 1, count=True, offset=offset)
        hits = []
        for score, address in result.hits[:query.size]:
            doc = searcher.doc(address)
            source = json.loads(bytes(doc.get_first("source")))
            lang = source["language"]
            analyzed = analyzed_by_lang.get(lang)
            stems = analyzed.highlight_stems if analyzed else set()
            text = source["text"]
            hits.append(Hit(
                id=doc.get_first("id"), score=float(score), title=source["title"],
                snippet=analysis.snippet(lang, text, stems) if query.highlight else "",
                language=lang, type=source["type"], visibility=source["visibility"],
                category=source.get("category"), tags=source.get("tags") or []))
        next_cursor = None
        if len(result.hits) > query.size:
            next_cursor = encode_cursor({"k": self.name, "o": offset + query.size})
        return Results(hits=hits, total=result.count, next_cursor=next_cursor)

    # --- rebuilding -------------------------------------------------------------------------------

    def rebuild(self):
        os.makedirs(self.directory, exist_ok=True)
        return _EmbeddedRebuild(self)

    def close(self):
        self._index = None


class _EmbeddedRebuild(Rebuild):
    def __init__(self, backend: EmbeddedBackend):
        self.backend = backend
        self.name = backend._new_generation()
        self.path = os.path.join(backend.directory, self.name)
        self.index = tantivy.Index.open(self.path)
        self.writer = self.index.writer(REBUILD_HEAP, 2)

    def add(self, docs):
        written = 0
        for doc in docs:
            self.writer.delete_documents_by_query(_term("id", doc.id))
            self.writer.add_document(to_document(doc))
            written += 1
        return written

    def delete(self, ids):
        for doc_id in ids:
            self.writer.delete_documents_by_query(_term("id", int(doc_id)))

    def swap(self):
        self.writer.commit()
        self.writer.wait_merging_threads()
        self.writer = None
        backend = self.backend
        with backend._lock:
            previous = None
            if os.path.exists(backend._pointer):
                with open(backend._pointer) as stream:
                    previous = stream.read().strip()
            backend._point_to(self.name)
            # Keep the generation just replaced (a process may still be reading it); drop older ones.
            for entry in os.listdir(backend.directory):
                if entry.startswith("gen-") and entry not in (self.name, previous):
                    shutil.rmtree(os.path.join(backend.directory, entry), ignore_errors=True)
        backend._current()

    def abort(self):
        if self.writer is not None:
            self.writer.rollback()
            self.writer.wait_merging_threads()
            self.writer = None
        shutil.rmtree(self.path, ignore_errors=True)
