"""The help centre: home (categories, the most helpful articles), a category, an article, search, the
suggestions shown while typing, and "did this answer your question?".

The visitor's language is the one the pages are shown in (the browser's, or the one chosen with the
language links: ``ui.i18n``); searches and suggestions look in that language first.

Deflection: suggestions carry the knowledge base's ``suggestion_id`` into the article's address (``?s=``);
opening it records ``suggestion_opened``, and "yes, this answered my question" records the deflection the
knowledge base counts (``record_suggestion_resolved``, once per suggestion). An article reached without a
suggestion (from the home page or a category) has no suggestion to resolve: its "yes" is thanked, not
counted, so the figure stays "questions typed and answered without a ticket".
"""
import nh3
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from helpdesk_common.errors import HelpdeskError

from ..api.kb import (read_article, read_browse, read_translations, record_opened, record_resolved, run_search,
                      run_suggest)
from ..ui.i18n import LANGUAGES
from . import bp, visitor

SUGGESTIONS = 5
RESULTS = 20


def language():
    return visitor.language()


@bp.get("/")
def home():
    page = read_browse(language(), None, 10)
    return render_template("portal/home.html", page=page)


@bp.get("/categories/<path:category>")
def category(category):
    try:
        page = read_browse(language(), category.lower(), 50)
    except HelpdeskError:
        page = {"categories": [], "popular": []}
    return render_template("portal/category.html", page=page, category=category)


@bp.get("/articles/<int:article_id>")
def article(article_id):
    found = read_article(article_id)
    suggestion = _suggestion_id(request.args.get("s"))
    if suggestion:
        try:
            record_opened(suggestion, article_id, _position(request.args.get("p")))
        except HelpdeskError:
            suggestion = None  # an unknown or tampered suggestion: the article is still shown
    # The knowledge base renders and sanitises on write; cleaned again here because this is where the HTML
    # enters a page (a row written before a sanitiser change, or by another writer, cannot carry script).
    body = nh3.clean(found["body_html"])
    return render_template("portal/article.html", article=found, body=body, suggestion=suggestion,
                           translations=read_translations(article_id), languages=LANGUAGES)


@bp.post("/articles/<int:article_id>/feedback")
def feedback(article_id):
    found = read_article(article_id)
    if request.form.get("answer") == "no":
        return redirect(url_for(".request_form", subject=found["title"], article=article_id))
    suggestion = _suggestion_id(request.form.get("s"))
    if suggestion:
        try:
            record_resolved(suggestion, article_id)
        except HelpdeskError:
            pass  # not a suggestion this article was in: thanked all the same, not counted
    flash(_("Thank you: we are glad this answered your question."), "success")
    return redirect(url_for(".article", article_id=article_id, answered=1))


@bp.get("/search")
def search():
    text = request.args.get("q", "").strip()[:500]
    results = None
    if text:
        results = run_search(text, language(), {}, {"size": RESULTS})
    return render_template("portal/search.html", q=text, results=results)


@bp.get("/suggest")
def suggest():
    """The htmx partial under a search or subject box: the best articles for what is typed so far."""
    text = (request.args.get("q") or request.args.get("subject") or "").strip()[:500]
    found = {"suggestion_id": None, "items": []}
    if len(text) >= 3:
        found = run_suggest(text, language(), SUGGESTIONS)
    return render_template("portal/_suggestions.html", found=found, q=text)


@bp.get("/language/<code>")
def choose_language(code):
    target = visitor.safe_next(request.args.get("next")) or url_for(".home")
    response = redirect(target)
    if code in LANGUAGES:
        visitor.remember_language(response, code)
    return response


def _suggestion_id(value):
    return value if value and len(value) <= 36 and value.replace("-", "").isalnum() else None


def _position(value):
    return int(value) if value and value.isdigit() and int(value) < 100 else None
