"""The rules of articles, on a real (SQLite) database, without nameko."""
import pytest
from sqlalchemy import select

from helpdesk_common.contracts import validate
from helpdesk_common.contracts.kb import (ArticleChanges, BulkImport, NewArticle, SuggestionResolved, SuggestRequest,
                                          TicketSuggestions, Viewer)
from helpdesk_common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from helpdesk_common.events import CATALOGUE
from helpdesk_kb_search import domain
from helpdesk_kb_search.models import ArticleVersion, Outbox, Suggestion

AGENT = Viewer(actor="alice", role="agent", correlation_id="c-1")
CUSTOMER = Viewer(actor="bob@example.com", role="customer", email="bob@example.com")


def new(**fields):
    data = {"title": "Reset a forgotten password", "body": "Choose **Forgot password**.", "language": "en"}
    data.update(fields)
    return validate(NewArticle, data)


def events(session):
    return [(row.event_type, row.envelope) for row in session.scalars(select(Outbox).order_by(Outbox.seq))]


def test_create_renders_markdown_safely_and_records_version(sessions):
    with sessions.begin() as session:
        view = domain.create_article(session, new(
            body="# Steps\n\n<script>alert(1)</script> [x](javascript:alert(1)) **bold**",
            status="published", tags=["password", "password"], category="Account/Sign-in"), AGENT)
    assert view["id"] >= 1 and view["version"] == 1 and view["author"] == "alice"
    assert "<h1>Steps</h1>" in view["body_html"] and "<strong>bold</strong>" in view["body_html"]
    assert "<script>" not in view["body_html"] and 'href="javascript' not in view["body_html"]
    assert view["tags"] == ["password"] and view["category"] == "account/sign-in"
    assert view["published_at"] is not None
    with sessions() as session:
        (kind, envelope), = events(session)
        versions = session.scalars(select(ArticleVersion)).all()
    assert kind == "article_published" and envelope["source"] == "kb_search"
    assert envelope["data"]["article"]["id"] == view["id"] and envelope["correlation_id"] == "c-1"
    assert [v.version for v in versions] == [1]


def test_a_draft_is_not_announced_until_published(sessions):
    with sessions.begin() as session:
        draft = domain.create_article(session, new(), AGENT)
    with sessions() as session:
        assert events(session) == []
    with sessions.begin() as session:
        view = domain.change_article(session, draft["id"], ArticleChanges(status="published", note="reviewed"),
                                     AGENT)
    assert view["version"] == 2 and view["status"] == "published"
    with sessions() as session:
        kinds = [k for k, _ in events(session)]
        history = domain.list_versions(session, draft["id"], AGENT)
    assert kinds == ["article_updated", "article_published"]
    assert [h["version"] for h in history] == [1, 2]
    assert history[1]["note"] == "reviewed"
    assert history[1]["changes"] == [{"field": "status", "old": "draft", "new": "published"}]
    assert history[0]["snapshot"]["status"] == "draft"


def test_update_keeps_history_and_guards_against_lost_updates(sessions):
    with sessions.begin() as session:
        article = domain.create_article(session, new(status="published"), AGENT)
    with sessions.begin() as session:
        domain.change_article(session, article["id"], ArticleChanges(body="New **text**", expected_version=1),
                              AGENT)
    with pytest.raises(Conflict) as error, sessions.begin() as session:
        domain.change_article(session, article["id"], ArticleChanges(title="Other", expected_version=1), AGENT)
    assert error.value.code == "version_mismatch"
    with sessions() as session:
        current = domain.article_view(domain.find_article(session, article["id"], AGENT))
        history = domain.list_versions(session, article["id"], AGENT)
    assert current["body_html"].strip() == "<p>New <strong>text</strong></p>" and current["version"] == 2
    assert history[0]["snapshot"]["body"] == "Choose **Forgot password**."
    assert history[1]["snapshot"]["body"] == "New **text**"


def test_nothing_changed_makes_no_version(sessions):
    with sessions.begin() as session:
        article = domain.create_article(session, new(status="published"), AGENT)
    with sessions.begin() as session:
        view = domain.change_article(session, article["id"], ArticleChanges(title=article["title"]), AGENT)
    assert view["version"] == 1


def test_archive_and_delete_are_announced(sessions):
    with sessions.begin() as session:
        article = domain.create_article(session, new(status="published"), AGENT)
    with sessions.begin() as session:
        domain.change_article(session, article["id"], ArticleChanges(status="archived"), AGENT)
    with sessions.begin() as session:
        assert domain.delete_article(session, article["id"], AGENT) == {"id": article["id"], "deleted": True}
    with sessions() as session:
        kinds = [(k, e["data"].get("deleted")) for k, e in events(session)]
        assert session.scalars(select(ArticleVersion)).all() == []
        with pytest.raises(NotFound):
            domain.find_article(session, article["id"], AGENT)
    assert kinds[-2:] == [("article_archived", False), ("article_archived", True)]


def test_customers_read_only_published_public_articles(sessions):
    with sessions.begin() as session:
        public = domain.create_article(session, new(status="published"), AGENT)
        internal = domain.create_article(session, new(status="published", visibility="internal"), AGENT)
        draft = domain.create_article(session, new(), AGENT)
    with sessions() as session:
        assert domain.find_article(session, public["id"], CUSTOMER).id == public["id"]
        for hidden in (internal["id"], draft["id"], 9999, "abc"):
            with pytest.raises(NotFound):
                domain.find_article(session, hidden, CUSTOMER)
    with pytest.raises(Forbidden), sessions.begin() as session:
        domain.create_article(session, new(), CUSTOMER)


def test_translations_share_a_group(sessions):
    with sessions.begin() as session:
        en = domain.create_article(session, new(), AGENT)
        nl = domain.create_article(session, new(title="Wachtwoord vergeten", language="nl",
                                                translation_of=en["id"]), AGENT)
    assert nl["translation_group"] == en["translation_group"]
    with pytest.raises(ValidationFailed), sessions.begin() as session:
        domain.create_article(session, new(translation_of=12345), AGENT)


def test_import_creates_then_updates_by_external_id(sessions):
    items = [{"title": f"Article {i}", "body": "text", "language": "en", "status": "published",
              "external_id": f"ext-{i}"} for i in range(3)]
    with sessions.begin() as session:
        first = domain.import_articles(session, validate(BulkImport, {"articles": items}), AGENT)
    assert first["created"] == 3 and first["updated"] == 0
    items[0]["title"] = "Article zero, revised"
    with sessions.begin() as session:
        again = domain.import_articles(session, validate(BulkImport, {"articles": items}), AGENT)
    assert again == {"created": 0, "updated": 3, "ids": first["ids"]}  # matched by external id
    with sessions() as session:
        assert domain.find_article(session, first["ids"][0], AGENT).title == "Article zero, revised"
    with pytest.raises(Conflict), sessions.begin() as session:
        domain.create_article(session, new(external_id="ext-1"), AGENT)


def test_an_import_writes_the_same_article_versions_and_events_as_single_writes(sessions):
    """The bulk path (executemany) leaves what ``create_article`` would: the article, its first version,
    ``article_published`` for a published one only; an external id named twice in one import is created
    once and then updated; a translation joins its original's group."""
    with sessions.begin() as session:
        original = domain.create_article(session, new(status="published"), AGENT)
    items = [{"title": "Printer jams", "body": "Open *tray 2*.", "language": "en", "status": "published",
              "tags": ["printer", "printer"], "external_id": "p-1"},
             {"title": "Draft note", "body": "Later.", "language": "en", "external_id": "d-1"},
             {"title": "Printer jams (revised)", "body": "Open *tray 2*.", "language": "en",
              "status": "published", "tags": ["printer"], "external_id": "p-1"},
             {"title": "Wachtwoord vergeten", "body": "Kies *Wachtwoord vergeten*.", "language": "nl",
              "status": "published", "translation_of": original["id"]}]
    with sessions.begin() as session:
        report = domain.import_articles(session, validate(BulkImport, {"articles": items}), AGENT)
    assert (report["created"], report["updated"]) == (3, 1) and report["ids"][0] == report["ids"][2]
    printer, draft, translation = report["ids"][0], report["ids"][1], report["ids"][3]
    with sessions() as session:
        article = domain.find_article(session, printer, AGENT)
        assert (article.title, article.tags, article.version, article.author) == (
            "Printer jams (revised)", ["printer"], 2, "alice")
        assert "<em>tray 2</em>" in article.body_html and article.published_at is not None
        assert [v["changes"][0] for v in domain.list_versions(session, printer, AGENT)][0] == {
            "field": "created", "old": None, "new": "published"}
        assert domain.list_versions(session, draft, AGENT)[0]["snapshot"]["status"] == "draft"
        assert domain.find_article(session, translation, AGENT).translation_group == original["translation_group"]
        published = [e["data"]["article"]["id"] for t, e in events(session) if t == "article_published"]
        assert published == [original["id"], printer, translation]
        assert [e["data"]["article"]["id"] for t, e in events(session) if t == "article_updated"] == [printer]
    with pytest.raises(ValidationFailed), sessions.begin() as session:
        domain.import_articles(session, validate(BulkImport, {"articles": [
            {"title": "Orphan", "body": "x", "language": "sv", "translation_of": 999}]}), AGENT)


def test_commands_are_validated():
    with pytest.raises(ValidationFailed) as error:
        validate(NewArticle, {"title": "", "body": "x", "language": "de", "type": "blog", "colour": 1})
    fields = {d["field"] for d in error.value.details}
    assert {"title", "language", "type", "colour"} <= fields


def test_event_catalogue_has_the_kb_events():
    for name in ("article_published", "article_updated", "article_archived", "suggestion_shown",
                 "suggestion_opened", "suggestion_deflected"):
        assert CATALOGUE[name].source == "kb_search"


def test_a_solved_ticket_becomes_a_draft_without_personal_data(sessions):
    ticket = {"number": "HD-000007", "subject": "Invoice to jan@example.com is wrong",
              "description": "Call me on +31 6 1234 5678 or mail jan.jansen@example.nl, the VAT is missing.",
              "language": "en", "tags": ["billing", "vat"]}
    messages = [
        {"visibility": "internal", "author_role": "agent", "body": "Customer is a VIP, see CRM 4411-22."},
        {"visibility": "public", "author_role": "customer", "body": "Any news? My phone is 020-555 1234."},
        {"visibility": "public", "author_role": "agent",
         "body": "Add the VAT number under Billing > Company details: https://app.example.com/x?token=abc123"},
    ]
    with sessions.begin() as session:
        view = domain.draft_from_ticket(session, ticket, messages, AGENT)
    assert view["status"] == "draft" and view["type"] == "faq" and view["tags"] == ["billing", "vat"]
    text = view["title"] + view["body"]
    for secret in ("jan@example.com", "jan.jansen@example.nl", "1234 5678", "555 1234", "abc123", "VIP"):
        assert secret not in text
    assert "[email removed]" in view["title"] and "Billing > Company details" in view["body"]
    assert view["body"].startswith("## Question") and "## Answer" in view["body"]
    with pytest.raises(ValidationFailed), sessions.begin() as session:
        domain.draft_from_ticket(session, ticket, messages[:2], AGENT)
    with pytest.raises(Forbidden), sessions.begin() as session:
        domain.draft_from_ticket(session, ticket, messages, CUSTOMER)


# --- suggestions kept per ticket, and deflection ----------------------------------------------------

SYSTEM = Viewer(actor="kb_search", role="system", correlation_id="t-1")


def hit(article, score=2.0):
    return {"id": article["id"], "title": article["title"], "snippet": "a <mark>snippet</mark>", "score": score,
            "language": article["language"], "type": article["type"], "category": article["category"],
            "tags": article["tags"], "visibility": article["visibility"]}


def test_a_tickets_suggestions_are_kept_and_read_fresh(sessions):
    with sessions.begin() as session:
        first = domain.create_article(session, new(status="published", visibility="internal"), AGENT)
        second = domain.create_article(session, new(title="Unlock an account", status="published"), AGENT)
        third = domain.create_article(session, new(title="Gone soon", status="published"), AGENT)
    request = validate(SuggestRequest, {"text": "I forgot my password", "context": "ticket",
                                        "ticket_number": "HD-000009"})
    with sessions.begin() as session:
        suggestion_id = domain.suggestion_shown(session, request, [hit(first, 3.0), hit(second), hit(third, 1.0)],
                                                SYSTEM)
    with sessions.begin() as session:
        domain.change_article(session, second["id"], ArticleChanges(title="Unlock a locked account"), AGENT)
        domain.delete_article(session, third["id"], AGENT)
    with sessions() as session:
        found = domain.suggestions_for_ticket(session, "HD-000009", AGENT)
        none_yet = domain.suggestions_for_ticket(session, "HD-000010", AGENT)
        (kind, envelope), = [(k, e) for k, e in events(session) if k == "suggestion_shown"]
        with pytest.raises(Forbidden):
            domain.suggestions_for_ticket(session, "HD-000009", CUSTOMER)
    TicketSuggestions.model_validate(found)  # the shape the gateway documents
    assert found["suggestion_id"] == suggestion_id and found["suggested_at"] is not None
    assert [(i["id"], i["position"]) for i in found["items"]] == [(first["id"], 1), (second["id"], 2)]
    assert found["items"][0]["visibility"] == "internal" and found["items"][0]["score"] == 3.0
    assert found["items"][1]["title"] == "Unlock a locked account"  # as the article is now
    assert none_yet == {"ticket_number": "HD-000010", "suggestion_id": None, "suggested_at": None, "items": []}
    assert envelope["subject"] == "HD-000009" and envelope["data"]["article_ids"] == [
        first["id"], second["id"], third["id"]]


def test_a_ticket_with_no_match_is_recorded_without_an_event(sessions):
    request = validate(SuggestRequest, {"text": "zzz", "context": "ticket", "ticket_number": "HD-000011"})
    with sessions.begin() as session:
        domain.suggestion_shown(session, request, [], SYSTEM)
    with sessions() as session:
        found = domain.suggestions_for_ticket(session, "HD-000011", AGENT)
        assert [k for k, _ in events(session)] == []
    assert found["suggested_at"] is not None and found["items"] == []


def test_a_portal_suggestion_keeps_no_text_and_deflects_once(sessions):
    with sessions.begin() as session:
        article = domain.create_article(session, new(status="published"), AGENT)
        other = domain.create_article(session, new(title="Other", status="published"), AGENT)
    request = validate(SuggestRequest, {"text": "my secret password hunter2", "context": "portal"})
    with sessions.begin() as session:
        suggestion_id = domain.suggestion_shown(session, request, [hit(article)], CUSTOMER)
    with sessions() as session:
        row = session.get(Suggestion, suggestion_id)
        assert row.items == [{"id": article["id"], "position": 1, "score": 2.0}]
    with pytest.raises(ValidationFailed) as error, sessions.begin() as session:
        domain.suggestion_resolved(session, suggestion_id, SuggestionResolved(article_id=other["id"]), CUSTOMER)
    assert error.value.details[0]["field"] == "article_id"
    with sessions.begin() as session:
        first = domain.suggestion_resolved(session, suggestion_id, SuggestionResolved(article_id=article["id"]),
                                           CUSTOMER)
    with sessions.begin() as session:
        again = domain.suggestion_resolved(session, suggestion_id, SuggestionResolved(), CUSTOMER)
    assert first["recorded"] is True and first["article_id"] == article["id"]
    assert again == {**first, "recorded": False}
    with sessions() as session:
        deflected = [e for k, e in events(session) if k == "suggestion_deflected"]
    assert len(deflected) == 1
    data = deflected[0]["data"]
    assert data["suggestion_id"] == suggestion_id and data["article_ids"] == [article["id"]]
    assert data["article_id"] == article["id"] and data["language"] == "en"
    assert data["shown_at"] <= data["deflected_at"]


def test_only_known_portal_suggestions_deflect(sessions):
    request = validate(SuggestRequest, {"text": "x", "context": "ticket", "ticket_number": "HD-000012"})
    with sessions.begin() as session:
        ticket_suggestion = domain.suggestion_shown(session, request, [], SYSTEM)
    with pytest.raises(NotFound), sessions.begin() as session:
        domain.suggestion_resolved(session, "no-such-suggestion", SuggestionResolved(), CUSTOMER)
    with pytest.raises(Conflict) as error, sessions.begin() as session:
        domain.suggestion_resolved(session, ticket_suggestion, SuggestionResolved(), CUSTOMER)
    assert error.value.code == "not_a_portal_suggestion"


def test_suggestions_a_gateway_answered_from_its_cache_are_recorded_as_its_own_and_once(sessions):
    from helpdesk_common.contracts.kb import SuggestionsShown

    with sessions.begin() as session:
        article = domain.create_article(session, new(status="published"), AGENT)
    shown = validate(SuggestionsShown, {"shown": [
        {"suggestion_id": "0b5c6d2e-1111-4a4a-9b9b-000000000001", "lang": "sv", "query_length": 9,
         "items": [{"id": article["id"], "score": 2.5}]},
        {"suggestion_id": "0b5c6d2e-1111-4a4a-9b9b-000000000002", "lang": "en", "query_length": 4,
         "items": [{"id": article["id"], "score": 1.0}]}]}).shown
    with sessions.begin() as session:
        assert domain.suggestions_shown(session, shown, CUSTOMER) == 2
    with sessions.begin() as session:
        assert domain.suggestions_shown(session, shown, CUSTOMER) == 0  # the batch again: nothing twice
    with sessions() as session:
        row = session.get(Suggestion, "0b5c6d2e-1111-4a4a-9b9b-000000000001")
        assert (row.context, row.language, row.items) == ("portal", "sv", [
            {"id": article["id"], "position": 1, "score": 2.5}])
        announced = [e["data"] for k, e in events(session) if k == "suggestion_shown"]
    assert [(d["suggestion_id"][-1], d["language"], d["query_length"], d["article_ids"]) for d in announced] == [
        ("1", "sv", 9, [article["id"]]), ("2", "en", 4, [article["id"]])]
    CATALOGUE["suggestion_shown"].data_model.model_validate(announced[0])  # the catalogue's schema
    with sessions.begin() as session:  # the visitor's "yes" counts as for any suggestion
        resolved = domain.suggestion_resolved(session, "0b5c6d2e-1111-4a4a-9b9b-000000000001",
                                              SuggestionResolved(article_id=article["id"]), CUSTOMER)
    assert resolved["recorded"] is True
