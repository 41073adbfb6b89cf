"""Browsing the knowledge base without a query: what the portal's help centre shows before anyone types.

Plain functions of a session. Categories and the most helpful articles come from the articles' rows and
the deflections recorded on suggestions (``Suggestion.deflected_article_id``: the article a visitor said
answered the question), not from the search index: a browse must agree with what was published, and the
counts are small enough for one grouped query.
"""
from sqlalchemy import func, select

from .domain import iso, visibilities_for
from .models import Article, Suggestion


def _summary(article):
    return {"id": article.id, "title": article.title, "language": article.language, "type": article.type,
            "category": article.category, "published_at": iso(article.published_at)}


def browse(session, lang, category, viewer, size):
    """``{"language", "category", "categories": [{"category", "articles"}], "popular": [summary]}``.

    ``categories``: every category with published articles the viewer may read in ``lang``, with their
    number; ``popular``: the articles of ``lang`` (within ``category`` and its sub-categories when given)
    that answered most visitors' questions, then the newest."""
    readable = (Article.status == "published", Article.visibility.in_(visibilities_for(viewer)),
                Article.language == lang)
    counts = session.execute(select(Article.category, func.count()).where(*readable, Article.category.is_not(None))
                             .group_by(Article.category).order_by(Article.category)).all()
    helped = (select(Suggestion.deflected_article_id.label("article_id"), func.count().label("n"))
              .where(Suggestion.deflected_article_id.is_not(None))
              .group_by(Suggestion.deflected_article_id).subquery())
    query = select(Article).outerjoin(helped, helped.c.article_id == Article.id).where(*readable)
    if category:
        query = query.where((Article.category == category) | Article.category.startswith(category + "/"))
    query = query.order_by(func.coalesce(helped.c.n, 0).desc(), Article.published_at.desc(), Article.id.desc())
    return {"language": lang, "category": category,
            "categories": [{"category": name, "articles": n} for name, n in counts],
            "popular": [_summary(article) for article in session.scalars(query.limit(size))]}


def translations(session, article, viewer):
    """The other languages' versions of ``article`` (same translation group) the viewer may read."""
    query = (select(Article).where(Article.translation_group == article.translation_group, Article.id != article.id,
                                   Article.status == "published",
                                   Article.visibility.in_(visibilities_for(viewer)))
             .order_by(Article.language))
    return [_summary(other) for other in session.scalars(query)]
