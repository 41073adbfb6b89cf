"""The knowledge base end to end: articles written through the API are found through it, in English,
Dutch and Swedish; visitors never see internal articles; suggestions and drafts from tickets work."""
import uuid

import pytest
import requests

from stack import EventRecorder, create_token, new_ticket, wait_for

pytestmark = pytest.mark.e2e

ARTICLES = [
    ("en", "Reset your password", "Open **Settings**, choose *Security* and click *Reset password*. "
                                  "A link arrives by email within a minute.", "public"),
    ("nl", "Wachtwoord opnieuw instellen", "Ga naar **Instellingen**, kies *Beveiliging* en klik op "
                                           "*Wachtwoord opnieuw instellen*.", "public"),
    ("sv", "Återställ ditt lösenord", "Öppna **Inställningar**, välj *Säkerhet* och klicka på "
                                      "*Återställ lösenord*.", "public"),
    ("en", "Password resets for enterprise tenants", "Internal: enterprise password resets go through "
                                                      "the tenant admin console.", "internal"),
]


@pytest.fixture(scope="module")
def articles(platform):
    admin = platform.session()
    made = []
    for language, title, body, visibility in ARTICLES:
        response = admin.post(f"{platform.url}/api/v1/kb/articles", json={
            "title": title, "body": body, "language": language, "type": "faq", "category": "account/login",
            "tags": ["password"], "visibility": visibility, "status": "published"})
        assert response.status_code == 201, response.text
        made.append(response.json())
    return made


def search(platform, session, **params):
    response = session.get(f"{platform.url}/api/v1/kb/search", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_articles_are_found_in_each_language_with_highlights(platform, articles):
    visitor = requests.Session()
    for query, lang, expected in (("password reset", "en", articles[0]), ("wachtwoord", "nl", articles[1]),
                                  ("lösenord", "sv", articles[2])):
        page = wait_for(lambda: search(platform, visitor, q=query, lang=lang)["items"], timeout=30,
                        what=f"{query!r} to be indexed")
        assert page[0]["id"] == expected["id"]
        assert page[0]["score"] > 0 and ("<mark>" in page[0]["snippet"] or "<em>" in page[0]["snippet"])


def test_visitors_never_see_internal_articles_but_agents_do(platform, articles):
    internal = articles[3]["id"]
    wait_for(lambda: any(hit["id"] == internal for hit in
                         search(platform, platform.session(), q="enterprise password", lang="en")["items"]),
             timeout=30, what="the internal article to be indexed")
    for session in (requests.Session(), platform.session(create_token(platform, "customer", email="c@x.example"))):
        hits = search(platform, session, q="enterprise password", lang="en")["items"]
        assert internal not in [hit["id"] for hit in hits]
        assert session.get(f"{platform.url}/api/v1/kb/articles/{internal}").status_code == 404


def test_paging_and_suggestions(platform, articles):
    visitor = requests.Session()
    wait_for(lambda: search(platform, visitor, q="password", lang="en")["items"], timeout=30, what="indexing")
    first = search(platform, visitor, q="password", lang="en", size=1)
    assert len(first["items"]) == 1
    if first["next_cursor"]:
        second = search(platform, visitor, q="password", lang="en", size=1, cursor=first["next_cursor"])
        assert [h["id"] for h in second["items"]] != [h["id"] for h in first["items"]]
    suggested = visitor.get(f"{platform.url}/api/v1/kb/suggest", params={"text": "I forgot my password", "lang": "en"})
    assert suggested.status_code == 200
    assert articles[0]["id"] in [hit["id"] for hit in suggested.json()["items"]]
    opened = visitor.post(f"{platform.url}/api/v1/kb/suggestions/opened",
                          json={"suggestion_id": suggested.json()["suggestion_id"], "article_id": articles[0]["id"]})
    assert opened.status_code == 201, opened.text


def test_writing_needs_an_agent_and_bad_input_is_refused(platform, articles):
    visitor = requests.Session()
    body = {"title": "x", "body": "y", "language": "en"}
    assert visitor.post(f"{platform.url}/api/v1/kb/articles", json=body).status_code == 401
    customer = platform.session(create_token(platform, "customer", email="d@x.example"))
    assert customer.post(f"{platform.url}/api/v1/kb/articles", json=body).status_code == 403
    wrong = platform.session().post(f"{platform.url}/api/v1/kb/articles", json={**body, "language": "de"})
    assert wrong.status_code == 422 and wrong.json()["error"]["details"][0]["field"] == "language"
    assert visitor.get(f"{platform.url}/api/v1/kb/search", params={"q": ""}).status_code == 422


def test_a_solved_ticket_becomes_a_draft_without_personal_data(platform, api):
    number = api.post(f"{platform.url}/api/v1/tickets", json=new_ticket(
        subject="Printer shows error 0x51", description="Call me on +46 70 123 45 67 or ann@example.com")).json()["number"]
    api.post(f"{platform.url}/api/v1/tickets/{number}/messages",
             json={"body": "Turn the printer off, remove the toner, and turn it on again.", "visibility": "public"})
    api.patch(f"{platform.url}/api/v1/tickets/{number}", json={"status": "resolved"})
    draft = api.post(f"{platform.url}/api/v1/tickets/{number}/article-draft", json={"language": "en"})
    assert draft.status_code == 201, draft.text
    article = draft.json()
    assert article["status"] == "draft" and "toner" in article["body"]
    assert "ann@example.com" not in article["body"] and "123 45 67" not in article["body"]


@pytest.fixture
def kb_events(platform):
    with EventRecorder(platform.amqp_uri, "kb_search") as recorder:
        yield recorder


def test_a_ticket_created_through_the_api_carries_suggested_articles(platform, api, articles):
    english, internal = articles[0], articles[3]
    # Both articles searchable first: the suggestions are made once, when the ticket is created.
    wait_for(lambda: {english["id"], internal["id"]} <= {hit["id"] for hit in search(
        platform, api, q="password reset enterprise", lang="en")["items"]}, timeout=30, what="indexing")
    number = api.post(f"{platform.url}/api/v1/tickets", json=new_ticket(
        subject="Password reset link never arrives",
        description="I tried to reset my password twice but no email came.", language="en")).json()["number"]
    url = f"{platform.url}/api/v1/tickets/{number}/suggestions"

    def suggested():
        response = api.get(url)
        assert response.status_code == 200, response.text
        return response.json()["items"] and response.json()
    found = wait_for(suggested, timeout=30, what=f"suggestions for {number}")
    ids = [item["id"] for item in found["items"]]
    assert found["ticket_number"] == number and found["suggestion_id"] and found["suggested_at"]
    assert english["id"] in ids and internal["id"] in ids  # agents see internal articles too
    assert [item["position"] for item in found["items"]] == list(range(1, len(ids) + 1))
    assert all(item["score"] > 0 and item["title"] for item in found["items"])
    assert {item["language"] for item in found["items"]} == {"en"}

    agent = platform.session(create_token(platform, "agent"))
    assert [i["id"] for i in agent.get(url).json()["items"]] == ids
    customer = platform.session(create_token(platform, "customer", email="e@x.example"))
    assert customer.get(url).status_code == 403
    assert requests.get(url).status_code == 401
    missing = api.get(f"{platform.url}/api/v1/tickets/HD-999999/suggestions")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ticket_not_found"


def test_a_visitor_who_found_the_answer_deflects_a_ticket(platform, api, articles, kb_events):
    visitor = requests.Session()
    english = articles[0]
    shown = wait_for(lambda: (r := visitor.get(f"{platform.url}/api/v1/kb/suggest",
                                               params={"text": "forgot my passw", "lang": "en"}).json())
                     and r["items"] and r, timeout=30, what="a portal suggestion")
    assert english["id"] in [hit["id"] for hit in shown["items"]]
    resolved_url = f"{platform.url}/api/v1/kb/suggestions/{shown['suggestion_id']}/resolved"

    wrong = visitor.post(resolved_url, json={"article_id": 999999})
    assert wrong.status_code == 422 and wrong.json()["error"]["details"][0]["field"] == "article_id"
    first = visitor.post(resolved_url, json={"article_id": english["id"]})
    assert first.status_code == 200, first.text
    assert first.json()["recorded"] is True and first.json()["article_id"] == english["id"]
    again = visitor.post(resolved_url, json={})
    assert again.status_code == 200 and again.json() == {**first.json(), "recorded": False}

    deflected = kb_events.wait("suggestion_deflected")[0]
    assert deflected["source"] == "kb_search" and deflected["data"]["suggestion_id"] == shown["suggestion_id"]
    assert deflected["data"]["article_id"] == english["id"]
    assert deflected["data"]["article_ids"] == [hit["id"] for hit in shown["items"]]
    assert "passw" not in str(deflected)  # nothing the visitor typed is broadcast

    unknown = visitor.post(f"{platform.url}/api/v1/kb/suggestions/{uuid.uuid4()}/resolved", json={})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "suggestion_not_found"
    # A ticket's suggestion was made for its agents: it cannot deflect anything.
    number = api.post(f"{platform.url}/api/v1/tickets", json=new_ticket(
        subject="Password reset", description="Reset my password please")).json()["number"]
    ticket_suggestion = wait_for(lambda: api.get(f"{platform.url}/api/v1/tickets/{number}/suggestions")
                                 .json()["suggestion_id"], timeout=30, what="the ticket's suggestions")
    refused = visitor.post(f"{platform.url}/api/v1/kb/suggestions/{ticket_suggestion}/resolved", json={})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_a_portal_suggestion"
    assert len(kb_events.of("suggestion_deflected")) == 1
