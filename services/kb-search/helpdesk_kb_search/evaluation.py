"""Relevance measures and the labelled collection (``tests/data``), shared by the tests and ``bench/``.

The collection: ``articles.json`` (articles in en/nl/sv, keyed by ``external_id``) and ``queries.json``
(customer-style queries, each with the ``external_id`` of the articles that answer it).
"""
import json
import math
import os

from .analysis import html_to_text
from .backends.base import IndexDoc, SearchQuery
from .rendering import render

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "data")


def load_collection(directory=DATA):
    with open(os.path.join(directory, "articles.json"), encoding="utf-8") as stream:
        articles = json.load(stream)
    with open(os.path.join(directory, "queries.json"), encoding="utf-8") as stream:
        queries = json.load(stream)
    return articles, queries


def collection_docs(articles, first_id=1):
    """Index documents of the collection's articles (ids numbered from ``first_id``) and id -> external id."""
    docs, names = [], {}
    for number, article in enumerate(articles, start=first_id):
        docs.append(IndexDoc(id=number, version=1, title=article["title"],
                             text=html_to_text(render(article["body"])), language=article["language"],
                             type=article["type"], visibility=article["visibility"],
                             category=article.get("category"), tags=tuple(article.get("tags") or ())))
        names[number] = article["external_id"]
    return docs, names


def reciprocal_rank(ranked, relevant, k=10):
    for position, item in enumerate(ranked[:k], start=1):
        if item in relevant:
            return 1.0 / position
    return 0.0


def ndcg(ranked, relevant, k=10):
    dcg = sum(1.0 / math.log2(position + 1) for position, item in enumerate(ranked[:k], start=1)
              if item in relevant)
    ideal = sum(1.0 / math.log2(position + 1) for position in range(1, min(len(relevant), k) + 1))
    return dcg / ideal if ideal else 0.0


def evaluate(backend, queries, names, k=10, visibilities=("public",)):
    """``{lang: {"mrr": .., "ndcg": .., "queries": n, "misses": [query ids ranked below 1]}}``."""
    by_lang = {}
    for query in queries:
        results = backend.search(SearchQuery(text=query["q"], languages=[query["lang"]],
                                             visibilities=list(visibilities), size=k, highlight=False))
        ranked = [names.get(hit.id) for hit in results.hits]
        relevant = set(query["relevant"])
        stats = by_lang.setdefault(query["lang"], {"rr": [], "ndcg": [], "misses": []})
        rr = reciprocal_rank(ranked, relevant, k)
        stats["rr"].append(rr)
        stats["ndcg"].append(ndcg(ranked, relevant, k))
        if rr < 1.0:
            stats["misses"].append({"id": query["id"], "q": query["q"], "rr": rr, "top": ranked[:3]})
    return {lang: {"mrr": sum(s["rr"]) / len(s["rr"]), "ndcg": sum(s["ndcg"]) / len(s["ndcg"]),
                   "queries": len(s["rr"]), "misses": s["misses"]} for lang, s in sorted(by_lang.items())}
