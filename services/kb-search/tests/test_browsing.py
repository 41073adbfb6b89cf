"""Browsing without a query (the portal's help centre): categories, the most helpful articles, translations."""
import uuid

from helpdesk_common.contracts import validate
from helpdesk_common.contracts.kb import NewArticle, Viewer
from helpdesk_kb_search import browsing, domain
from helpdesk_kb_search.models import Suggestion

AGENT = Viewer(actor="alice", role="agent")
VISITOR = Viewer(actor="anonymous", role="anonymous")


def write(session, title, language="en", category="account", **fields):
    data = {"title": title, "body": "Text.", "language": language, "category": category, "status": "published",
            **fields}
    return domain.create_article(session, validate(NewArticle, data), AGENT)["id"]


def test_categories_and_popular_articles_of_one_language_for_what_the_viewer_may_read(sessions):
    with sessions.begin() as session:
        reset = write(session, "Reset a password", category="account/login")
        invoice = write(session, "Pay an invoice", category="billing")
        write(session, "Internal runbook", category="ops", visibility="internal")
        write(session, "Draft", category="drafts", status="draft")
        write(session, "Återställ", language="sv", category="account/login")
        # Two visitors said the invoice article answered them, one the password article.
        for article_id in (invoice, invoice, reset):
            session.add(Suggestion(id=str(uuid.uuid4()), context="portal", language="en", items=[],
                                   deflected_article_id=article_id))
    with sessions() as session:
        page = browsing.browse(session, "en", None, VISITOR, 10)
        staff = browsing.browse(session, "en", None, AGENT, 10)
        within = browsing.browse(session, "en", "account", VISITOR, 10)
    assert page["categories"] == [{"category": "account/login", "articles": 1}, {"category": "billing", "articles": 1}]
    assert [a["title"] for a in page["popular"]] == ["Pay an invoice", "Reset a password"]
    assert "ops" in [c["category"] for c in staff["categories"]]
    assert [a["title"] for a in within["popular"]] == ["Reset a password"]  # sub-categories included


def test_translations_are_the_other_published_languages_of_the_group(sessions):
    with sessions.begin() as session:
        english = write(session, "Reset a password")
        swedish = write(session, "Återställ lösenordet", language="sv", translation_of=english)
        write(session, "Wachtwoord", language="nl", translation_of=english, status="draft")
    with sessions() as session:
        others = browsing.translations(session, domain.find_article(session, swedish, VISITOR), VISITOR)
    assert [(o["id"], o["language"]) for o in others] == [(english, "en")]
