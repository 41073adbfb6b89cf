"""The customer portal's pages through Flask's test client, with a stand-in for the services.

What the browser tests (tests/ui/test_portal_browser.py) cannot easily show: that article HTML is cleaned
again before it enters a page, that a suggestion's id travels to the deflection, that a refused
attachment sends nothing, that the visitor acts as a customer of the address typed, that the language
links set the visitor's language.
"""
import io
import base64
import re

import pytest

from helpdesk_common.contracts.intake import RateLimited
from helpdesk_common.errors import NotFound
from helpdesk_gateway.app import create_app
from helpdesk_gateway.settings import Settings
from helpdesk_common.testing import database_fixtures
from helpdesk_gateway.cli import upgrade

# Pages and HTTP plumbing, not storage: SQLite here; the gateway's accounts and tokens meet PostgreSQL in
# test_auth.py, test_cli.py, test_ui_password.py and in the end-to-end postgres run (tests/README.md).
db_url, sessions = database_fixtures("gateway", upgrade, kinds=("sqlite",))

XSS = '<script>alert(1)</script><img src=x onerror="alert(2)">'
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def article(article_id=1, language="sv", title="Återställ lösenordet", **extra):
    return {"id": article_id, "title": title, "body": "x", "body_html": f"<p>Steg ett</p>{XSS}",
            "language": language, "type": "article", "category": "account/login", "tags": [],
            "visibility": "public", "status": "published", "translation_group": "g", "version": 1, **extra}


class FakeServices:
    def __init__(self):
        self.calls = []
        self.fields = [{"name": "order", "label": "Order number", "type": "integer", "required": True, "options": []}]
        self.refuse = None

    def call(self, service, method, *args):
        self.calls.append((service, method, args))
        if method == "browse":
            return {"language": args[0], "category": args[1], "categories": [{"category": "account/login", "articles": 2}],
                    "popular": [{"id": 1, "title": "Återställ lösenordet", "language": "sv", "type": "article"}]}
        if method == "get_article":
            if args[0] != 1:
                raise NotFound("no such article", code="article_not_found")
            return article()
        if method == "translations":
            return [{"id": 2, "title": "Reset your password", "language": "en", "type": "article"}]
        if method == "suggest":
            return {"suggestion_id": "abc-123", "items": [{"id": 1, "title": "Återställ lösenordet"}]}
        if method in ("record_suggestion_opened", "record_suggestion_resolved"):
            return {"recorded": True}
        if method == "search":
            return {"items": [{"id": 1, "title": "T", "snippet": "a <mark>b</mark> &lt;script&gt;", "language": "sv"}],
                    "total": 1, "next_cursor": None, "language": args[1], "fallback": False}
        if method == "list_custom_fields":
            return self.fields
        if method == "submit_web_form":
            if self.refuse:
                raise self.refuse
            return {"ticket_number": "HD-000042", "created": True, "duplicate": False}
        raise AssertionError(f"unexpected call {service}.{method}")

    def called(self, method):
        return [args for _s, name, args in self.calls if name == method]


@pytest.fixture
def fake():
    return FakeServices()


@pytest.fixture
def client(db_url, dead_amqp_uri, fake):
    app = create_app(Settings(database_url=db_url, bootstrap_token="t", amqp_uri=dead_amqp_uri, rpc_timeout=0.5))
    app.extensions["helpdesk.rpc"] = fake
    return app.test_client()


def csrf(client, path="/help/articles/1"):
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)


def test_home_shows_categories_and_popular_articles_in_the_browsers_language(client, fake):
    page = client.get("/help/", headers={"Accept-Language": "sv-SE,sv;q=0.9"}).get_data(as_text=True)
    assert fake.called("browse")[0][0] == "sv"
    assert "Account / Login" in page and "Återställ lösenordet" in page
    assert '<html lang="sv">' in page


def test_the_language_links_override_the_browser(client, fake):
    answer = client.get("/help/language/nl?next=/help/search")
    assert answer.status_code == 302 and answer.headers["Location"] == "/help/search"
    client.get("/help/", headers={"Accept-Language": "sv"})
    assert fake.called("browse")[-1][0] == "nl"
    assert client.get("/help/language/nl?next=https://evil.example/").headers["Location"] == "/help/"


def test_an_article_is_cleaned_again_and_links_its_translations(client):
    page = client.get("/help/articles/1").get_data(as_text=True)
    assert "<p>Steg ett</p>" in page
    assert "<script>alert(1)" not in page and "onerror" not in page
    assert 'href="/help/articles/2"' in page and 'hreflang="en"' in page


def test_a_missing_article_is_a_portal_page_not_json(client):
    answer = client.get("/help/articles/9")
    assert answer.status_code == 404 and answer.mimetype == "text/html"
    assert "Back to the help centre" in answer.get_data(as_text=True)


def test_the_suggestion_travels_from_the_suggestions_to_the_deflection(client, fake):
    partial = client.get("/help/suggest?q=lösenord").get_data(as_text=True)
    assert "/help/articles/1?s=abc-123&amp;p=1" in partial
    page = client.get("/help/articles/1?s=abc-123&p=1").get_data(as_text=True)
    assert fake.called("record_suggestion_opened")[0][:2] == ("abc-123", 1)
    assert 'name="s" value="abc-123"' in page
    answer = client.post("/help/articles/1/feedback", data={"answer": "yes", "s": "abc-123",
                                                             "csrf_token": csrf(client, "/help/articles/1")})
    assert answer.status_code == 302
    resolved = fake.called("record_suggestion_resolved")
    assert resolved[0][0] == "abc-123" and resolved[0][2] == 1


def test_no_leads_to_the_request_form_prefilled(client):
    answer = client.post("/help/articles/1/feedback", data={"answer": "no", "csrf_token": csrf(client)})
    assert answer.status_code == 302 and "/help/request?subject=" in answer.headers["Location"]
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert 'value="Återställ lösenordet"' in page


def test_feedback_without_the_csrf_token_changes_nothing(client, fake):
    answer = client.post("/help/articles/1/feedback", data={"answer": "yes", "s": "abc-123"})
    assert answer.status_code == 403
    assert fake.called("record_suggestion_resolved") == []


def test_search_snippets_keep_only_the_highlight(client):
    page = client.get("/help/search?q=b").get_data(as_text=True)
    assert "a <mark>b</mark> &lt;script&gt;" in page


def form(client, **extra):
    data = {"csrf_token": csrf(client, "/help/request"), "email": "eva@example.se", "name": "Eva",
            "subject": "VPN", "description": "It drops", "cf_order": "12", "submission_id": "s1", **extra}
    return client.post("/help/request", data=data, content_type="multipart/form-data")


def test_a_request_is_sent_as_the_customer_of_the_address_typed(client, fake):
    answer = form(client, attachments=[(io.BytesIO(PNG), "screen.png")])
    assert answer.status_code == 302
    sent, who = fake.called("submit_web_form")[0]
    assert who["role"] == "customer" and who["email"] == "eva@example.se"
    assert sent["custom_fields"] == {"order": 12} and sent["attachments"][0]["content_type"] == "image/png"
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "HD-000042" in page


@pytest.mark.parametrize("content, name, words", [
    (b"MZ\x90\x00", "setup.exe", "not a type we accept"),
    (b"MZ\x90\x00", "holiday.png", "does not contain what its name says"),
    # over the app's 1 MB body limit: the view's own limit applies before the CSRF check reads the form
    (b"%PDF-" + b"x" * (5 * 1024 * 1024), "scan.pdf", "larger than 4 MB"),
])
def test_a_refused_attachment_sends_nothing_and_says_why(client, fake, content, name, words):
    answer = form(client, attachments=[(io.BytesIO(content), name)])  # a file of its own each run (it is read)
    assert answer.status_code == 422 and words in answer.get_data(as_text=True)
    assert fake.called("submit_web_form") == []


def test_missing_fields_and_a_wrong_custom_field_are_named(client, fake):
    page = form(client, subject="", cf_order="twelve").get_data(as_text=True)
    assert "Say in a few words" in page and "Enter a number." in page
    assert 'value="eva@example.se"' in page  # what was typed is kept
    assert fake.called("submit_web_form") == []


def test_the_rate_limit_is_a_clear_message(client, fake):
    fake.refuse = RateLimited("too many", code="rate_limited")
    answer = form(client)
    assert answer.status_code == 429 and "several requests in a short time" in answer.get_data(as_text=True)


def test_the_confirmation_needs_this_browsers_submission(client):
    assert client.get("/help/request/sent").headers["Location"] == "/help/request"


# --- customers: sign-in by mailed link ----------------------------------------------------------------

def test_a_link_works_once_and_not_after_it_expires(sessions):
    from datetime import timedelta

    from helpdesk_common.database import utcnow
    from helpdesk_gateway.portal import customers

    now = utcnow()
    token = customers.make_link(sessions, "Eva@Example.se", now)
    assert customers.check_link(sessions, token, now) == "eva@example.se"
    email, cookie = customers.redeem_link(sessions, token, now)
    assert email == "eva@example.se" and customers.session_email(sessions, cookie, now) == email
    with pytest.raises(customers.LinkRefused) as used:
        customers.redeem_link(sessions, token, now)
    assert used.value.code == "link_used"
    late = customers.make_link(sessions, "eva@example.se", now)
    with pytest.raises(customers.LinkRefused) as expired:
        customers.redeem_link(sessions, late, now + customers.LINK_LIFETIME + timedelta(seconds=1))
    assert expired.value.code == "link_expired"
    with pytest.raises(customers.LinkRefused) as unknown:
        customers.check_link(sessions, "guessed", now)
    assert unknown.value.code == "link_unknown"
    customers.end_session(sessions, cookie)
    assert customers.session_email(sessions, cookie, now) is None


def test_links_per_address_are_limited(sessions):
    from helpdesk_common.database import utcnow
    from helpdesk_gateway.portal import customers

    now = utcnow()
    made = [customers.make_link(sessions, "bo@example.se", now) for _ in range(customers.LINKS_PER_HOUR + 1)]
    assert all(made[:-1]) and made[-1] is None


class MailingServices(FakeServices):
    def __init__(self):
        super().__init__()
        self.mails = []
        self.tickets = {"HD-000001": {"number": "HD-000001", "subject": "VPN <b>drops</b>", "description": "d",
                                      "status": "open", "requester": {"email": "eva@example.se", "name": None},
                                      "created_at": "2026-12-01T10:00:00+00:00",
                                      "updated_at": "2026-12-01T10:00:00+00:00"}}

    def call(self, service, method, *args):
        if method == "send_account_mail":
            self.mails.append(args[0])
            return {"id": len(self.mails)}
        if method == "list_tickets":
            self.calls.append((service, method, args))
            return {"items": list(self.tickets.values()), "next_cursor": None}
        if method == "get_ticket":
            self.calls.append((service, method, args))
            if args[0] not in self.tickets:
                raise NotFound(f"There is no ticket {args[0]}.", code="ticket_not_found")
            return self.tickets[args[0]]
        if method == "list_messages":
            return [{"id": 1, "visibility": "internal", "author": "agent-1", "author_role": "agent", "body": "NOTE",
                     "created_at": "2026-12-01T11:00:00+00:00"},
                    {"id": 2, "visibility": "public", "author": "agent-1", "author_role": "agent",
                     "body": "ANSWER <b>x</b> https://help.example/help/satisfaction/t.s",
                     "created_at": "2026-12-01T11:00:00+00:00"}]
        if method == "add_message":
            self.calls.append((service, method, args))
            return {}
        if method == "submit_web_reply":
            self.calls.append((service, method, args))
            return {"ticket_number": args[0], "created": False, "duplicate": False}
        if method == "get_workflow":
            return {"initial": "new", "statuses": [{"name": "open", "category": "open", "next": ["resolved"]},
                                                   {"name": "resolved", "category": "resolved", "next": ["open"]}]}
        if method == "list_attachments":
            return [{"id": 5, "ticket_number": args[0], "filename": "<b>page</b>.html", "content_type": "text/html",
                     "size": 2048, "sha256": "x", "inline": False},
                    {"id": 6, "ticket_number": args[0], "filename": "logo.png", "content_type": "image/png",
                     "size": 10, "sha256": "y", "inline": True}]
        if method == "read_attachment":
            if args[1] != 5:
                raise NotFound("no such attachment", code="attachment_not_found")
            return {"filename": "<b>page</b>.html", "content_type": "text/html",
                    "content": base64.b64encode(b"<script>alert(1)</script>").decode()}
        if method == "resolve_by_customer":
            self.calls.append((service, method, args))
            self.tickets[args[0]]["status"] = "resolved" if args[1]["solved"] else "open"
            return self.tickets[args[0]]
        return super().call(service, method, *args)


@pytest.fixture
def mailing(db_url, dead_amqp_uri):
    fake = MailingServices()
    app = create_app(Settings(database_url=db_url, bootstrap_token="t", amqp_uri=dead_amqp_uri, rpc_timeout=0.5))
    app.extensions["helpdesk.rpc"] = fake
    return fake, app.test_client()


def test_sign_in_by_mailed_link_then_my_requests_as_that_customer(mailing):
    fake, client = mailing
    assert client.get("/help/requests").headers["Location"].startswith("/help/sign-in")
    token = csrf(client, "/help/sign-in")
    page = client.post("/help/sign-in", data={"email": "eva@example.se", "csrf_token": token},
                       headers={"Accept-Language": "sv"}).get_data(as_text=True)
    assert "eva@example.se" in page
    (mail,) = fake.mails
    assert mail["to"] == "eva@example.se" and mail["language"] == "sv"
    link = re.search(r"http://localhost(/help/sign-in/\S+)", mail["body"]).group(1)
    assert client.get(link).status_code == 200  # a page asking for the click: the link is not spent yet
    answer = client.post(link, data={"csrf_token": csrf(client, link)})
    assert answer.status_code == 302 and answer.headers["Location"] == "/help/requests"
    assert "HttpOnly" in answer.headers["Set-Cookie"]
    page = client.get("/help/requests").get_data(as_text=True)
    assert "VPN &lt;b&gt;drops&lt;/b&gt;" in page
    viewer = [args[-1] for _s, name, args in fake.calls if name == "list_tickets"][-1]
    assert viewer["role"] == "customer" and viewer["email"] == "eva@example.se"
    followed = client.get("/help/requests/HD-000001").get_data(as_text=True)
    assert "ANSWER" in followed and "NOTE" not in followed
    assert client.get("/help/requests/HD-000999").status_code == 404
    again = client.post(link, data={"csrf_token": csrf(client, "/help/requests")})
    assert again.status_code == 410 and "used already" in again.get_data(as_text=True)


def test_a_customer_reply_is_public(mailing, sessions):
    from helpdesk_common.database import utcnow
    from helpdesk_gateway.portal import customers

    fake, client = mailing
    _email, cookie = customers.redeem_link(sessions, customers.make_link(sessions, "eva@example.se", utcnow()),
                                           utcnow())
    client.set_cookie("hd_customer", cookie, path="/help")
    answer = client.post("/help/requests/HD-000001/reply",
                         data={"body": "<b>Still</b> broken", "csrf_token": csrf(client, "/help/requests/HD-000001")})
    assert answer.status_code == 302
    (number, message, viewer), = [args for _s, name, args in fake.calls if name == "add_message"]
    assert message == {"body": "<b>Still</b> broken", "visibility": "public"} and viewer["role"] == "customer"


def signed_in(client, sessions, email="eva@example.se"):
    from helpdesk_common.database import utcnow
    from helpdesk_gateway.portal import customers

    _email, cookie = customers.redeem_link(sessions, customers.make_link(sessions, email, utcnow()), utcnow())
    client.set_cookie("hd_customer", cookie, path="/help")


def test_a_reply_with_files_goes_through_intake_as_the_customer(mailing, sessions):
    fake, client = mailing
    signed_in(client, sessions)
    page = client.get("/help/requests/HD-000001").get_data(as_text=True)
    reply_id = re.search(r'name="reply_id" value="([0-9a-f]+)"', page).group(1)
    assert 'enctype="multipart/form-data"' in page and 'id="reply-files"' in page
    answer = client.post("/help/requests/HD-000001/reply", content_type="multipart/form-data", data={
        "body": "The log", "reply_id": reply_id, "csrf_token": csrf(client, "/help/requests/HD-000001"),
        "attachments": [(io.BytesIO(PNG), "screen.png"), (io.BytesIO(b"a,b\n1,2\n"), "data.csv")]})
    assert answer.status_code == 302
    (number, reply, viewer), = [args for _s, name, args in fake.calls if name == "submit_web_reply"]
    assert number == "HD-000001" and reply["body"] == "The log" and reply["reply_id"] == reply_id
    assert [(f["filename"], f["content_type"], base64.b64decode(f["content_base64"])) for f in reply["attachments"]] \
        == [("screen.png", "image/png", PNG), ("data.csv", "text/csv", b"a,b\n1,2\n")]
    assert viewer["role"] == "customer" and viewer["email"] == "eva@example.se"
    assert [args for _s, name, args in fake.calls if name == "add_message"] == []  # one path for the message


@pytest.mark.parametrize("files, words", [
    ([(b"MZ\x90 not a pdf", "invoice.pdf")], "does not contain what its name says"),
    ([(b"#!/bin/sh", "run.sh")], "is not a type we accept"),
    ([(b"%PDF-" + b"x" * (4 * 1024 * 1024), "scan.pdf")], "larger than 4 MB"),
    ([(PNG, f"p{n}.png") for n in range(6)], "at most 5 files"),
])
def test_a_refused_reply_file_sends_nothing_names_the_reason_and_keeps_the_text(mailing, sessions, files, words):
    fake, client = mailing
    signed_in(client, sessions)
    answer = client.post("/help/requests/HD-000001/reply", content_type="multipart/form-data", data={
        "body": "Mein <b>Text</b>", "csrf_token": csrf(client, "/help/requests/HD-000001"),
        "attachments": [(io.BytesIO(content), name) for content, name in files]})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422 and words in page, page
    assert 'id="reply-problem"' in page and "Mein &lt;b&gt;Text&lt;/b&gt;</textarea>" in page
    assert [name for _s, name, _a in fake.calls if name in ("submit_web_reply", "add_message")] == []


def test_intakes_refusal_of_a_reply_is_a_clear_page(mailing, sessions):
    from helpdesk_common.contracts.intake import TooLarge

    fake, client = mailing
    signed_in(client, sessions)
    original = fake.call

    def refusing(service, method, *args):
        if method == "submit_web_reply":
            raise TooLarge("The attachments add up to 11000000 bytes; the limit is 10485760.")
        return original(service, method, *args)

    fake.call = refusing
    answer = client.post("/help/requests/HD-000001/reply", content_type="multipart/form-data", data={
        "body": "Scan", "csrf_token": csrf(client, "/help/requests/HD-000001"),
        "attachments": [(io.BytesIO(PNG), "scan.png")]})
    assert answer.status_code == 413 and "the limit is 10485760" in answer.get_data(as_text=True)


def test_a_colleagues_request_shown_by_a_shared_organisation_is_read_only(mailing, sessions):
    from helpdesk_common.database import utcnow
    from helpdesk_gateway.portal import customers

    fake, client = mailing
    fake.tickets["HD-000001"]["yours"] = True
    fake.tickets["HD-000002"] = {**fake.tickets["HD-000001"], "number": "HD-000002", "subject": "Printer",
                                 "yours": False, "requester": {"email": "bo@example.se", "name": "Bo <Berg>"}}
    _email, cookie = customers.redeem_link(sessions, customers.make_link(sessions, "eva@example.se", utcnow()),
                                           utcnow())
    client.set_cookie("hd_customer", cookie, path="/help")
    listed = client.get("/help/requests").get_data(as_text=True)
    assert "Asked by" in listed and "Bo &lt;Berg&gt;" in listed
    own = client.get("/help/requests/HD-000001").get_data(as_text=True)
    assert 'id="reply-form"' in own and 'id="solved"' in own
    theirs = client.get("/help/requests/HD-000002").get_data(as_text=True)
    assert 'id="reply-form"' not in theirs and 'id="solved"' not in theirs
    assert 'id="colleagues-request"' in theirs and "Bo &lt;Berg&gt;" in theirs


def _signed_in(client, sessions, email="eva@example.se"):
    from helpdesk_common.database import utcnow
    from helpdesk_gateway.portal import customers

    _email, cookie = customers.redeem_link(sessions, customers.make_link(sessions, email, utcnow()), utcnow())
    client.set_cookie("hd_customer", cookie, path="/help")


def test_the_open_request_listens_to_its_own_live_stream_and_fetches_its_parts(mailing, sessions):
    fake, client = mailing
    assert client.get("/help/requests/HD-000001/live").headers["Location"].startswith("/help/sign-in")
    assert client.get("/help/requests/HD-000001/parts").status_code == 302
    _signed_in(client, sessions)
    page = client.get("/help/requests/HD-000001").get_data(as_text=True)
    assert 'sse-connect="/help/requests/HD-000001/live"' in page and "htmx-ext-sse" in page
    assert 'hx-trigger="sse:ticket"' in page and 'id="reply-form"' in page
    # the support side's link can be followed; its markup is shown as text
    assert '<a href="https://help.example/help/satisfaction/t.s" rel="nofollow noopener" target="_blank">' in page
    assert "ANSWER &lt;b&gt;x&lt;/b&gt;" in page
    fake.tickets["HD-000001"]["status"] = "resolved"
    parts = client.get("/help/requests/HD-000001/parts").get_data(as_text=True)
    assert 'id="request-live"' in parts and 'id="reopen"' in parts
    assert 'id="reply-form"' not in parts and "<html" not in parts  # the draft's form is left alone
    # a guessed number: the ticket's 404 before any stream starts
    assert client.get("/help/requests/HD-000999/live").status_code == 404
    assert client.get("/help/requests/HD-000999/parts").status_code == 404


def test_a_customer_downloads_the_requests_files_safely_and_only_theirs(mailing, sessions):
    fake, client = mailing
    assert client.get("/help/requests/HD-000001/attachments/5").status_code == 302  # sign in first
    _signed_in(client, sessions)
    page = client.get("/help/requests/HD-000001").get_data(as_text=True)
    assert 'href="/help/requests/HD-000001/attachments/5"' in page and "&lt;b&gt;page&lt;/b&gt;.html" in page
    assert "logo.png" not in page  # an inline part of a mail is not listed
    answer = client.get("/help/requests/HD-000001/attachments/5")
    assert answer.status_code == 200 and answer.mimetype == "application/octet-stream"  # HTML never runs
    assert answer.headers["Content-Disposition"].startswith('attachment; filename="_b_page__b_.html"')
    assert answer.headers["X-Content-Type-Options"] == "nosniff" and "sandbox" in answer.headers["Content-Security-Policy"]
    viewer = [args[-1] for _s, name, args in fake.calls if name == "get_ticket"][-1]
    assert viewer["role"] == "customer" and viewer["email"] == "eva@example.se"  # judged as this customer
    assert client.get("/help/requests/HD-000999/attachments/5").status_code == 404  # another's ticket
    assert client.get("/help/requests/HD-000001/attachments/7").status_code == 404


# --- embedding: the request form and the chat widget in other sites' frames -------------------------

def test_the_embedded_form_may_be_framed_by_the_configured_sites_only_and_other_pages_by_none(
        client, fake, monkeypatch):
    monkeypatch.setenv("HELPDESK_EMBED_ORIGINS", "https://www.example.org  javascript:alert(1) http://shop.example:8080/")
    form = client.get("/help/embed/request")
    assert form.status_code == 200 and "X-Frame-Options" not in form.headers
    policy = form.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self' https://www.example.org http://shop.example:8080;" in policy
    assert "javascript" not in policy and "script-src 'self'" in policy
    page = form.get_data(as_text=True)
    assert 'action="/help/embed/request"' in page and 'class="top"' not in page and "embed-frame.js" in page
    chat = client.get("/help/embed/chat")
    assert "frame-ancestors 'self' https://www.example.org" in chat.headers["Content-Security-Policy"]
    assert 'id="chat-start"' in chat.get_data(as_text=True) and "chat-widget.js" in chat.get_data(as_text=True)
    ordinary = client.get("/help/request")
    assert ordinary.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in ordinary.headers["Content-Security-Policy"]


def test_the_embedded_form_needs_no_cookie_and_confirms_at_once(client, fake):
    # a browser in another site's frame sends none of our cookies, so no CSRF token either
    answer = client.post("/help/embed/request", data={
        "name": "Eva", "email": "eva@example.se", "subject": "Printer <b>jam</b>", "description": "d",
        "cf_order": "12", "submission_id": "s-1"}, headers={"Cookie": ""})
    assert answer.status_code == 201
    page = answer.get_data(as_text=True)
    assert '<strong id="ticket-number">HD-000042</strong>' in page and "Set-Cookie" not in answer.headers
    (form, who), = fake.called("submit_web_form")
    assert form["subject"] == "Printer <b>jam</b>" and who["email"] == "eva@example.se"
    refused = client.post("/help/embed/request", data={"email": "", "subject": "", "description": ""})
    assert refused.status_code == 422 and 'action="/help/embed/request"' in refused.get_data(as_text=True)
    assert len(fake.called("submit_web_form")) == 1
    # the portal's own form still needs its token
    assert client.post("/help/request", data={"email": "eva@example.se", "subject": "s", "description": "d"}
                       ).status_code == 403


def test_the_request_forms_are_limited_per_address_with_a_clear_page(db_url, dead_amqp_uri, fake):
    app = create_app(Settings(database_url=db_url, bootstrap_token="t", amqp_uri=dead_amqp_uri, rpc_timeout=0.5,
                              rate_limit_costly="2/minute"))
    app.extensions["helpdesk.rpc"] = fake
    client = app.test_client()
    form = {"name": "Eva", "email": "eva@example.se", "subject": "s", "description": "d", "cf_order": "1"}
    assert [client.post("/help/embed/request", data={**form, "submission_id": f"s-{n}"}).status_code
            for n in range(2)] == [201, 201]
    refused = client.post("/help/embed/request", data={**form, "submission_id": "s-3"})
    assert refused.status_code == 429 and refused.mimetype == "text/html"
    assert "Please wait a minute and try again." in refused.get_data(as_text=True)
    assert len(fake.called("submit_web_form")) == 2  # nothing sent for the refused one


def test_the_loader_script_is_served_with_the_pages_assets(client):
    script = client.get("/static/js/embed.js")
    assert script.status_code == 200 and "/help/embed/" in script.get_data(as_text=True)


# --- satisfaction: the survey mail's one-click links -------------------------------------------------

class SurveyServices(FakeServices):
    def __init__(self):
        super().__init__()
        self.answers = []

    def call(self, service, method, *args):
        if method == "survey_for_link":
            if args[0] != "good.token":
                raise NotFound("This survey link is not valid.", code="survey_not_found")
            rating = self.answers[-1][0] if self.answers else None
            return {"ticket_number": "HD-000009", "rating": rating, "comment": None}
        if method == "answer_csat":
            if args[0] != "good.token":
                raise NotFound("This survey link is not valid.", code="survey_not_found")
            self.answers.append(args[1:3])
            return {"ticket_number": "HD-000009", "rating": args[1], "comment": args[2]}
        return super().call(service, method, *args)


@pytest.fixture
def surveyed(db_url, dead_amqp_uri):
    fake = SurveyServices()
    app = create_app(Settings(database_url=db_url, bootstrap_token="t", amqp_uri=dead_amqp_uri, rpc_timeout=0.5))
    app.extensions["helpdesk.rpc"] = fake
    return fake, app.test_client()


def test_one_click_records_the_rating_and_the_comment_changes_it(surveyed):
    fake, client = surveyed
    page = client.get("/help/satisfaction/good.token?rating=4").get_data(as_text=True)
    assert fake.answers == [(4, None)] and 'value="4" checked' in page and "HD-000009" in page
    answer = client.post("/help/satisfaction/good.token", data={
        "rating": "5", "comment": "<b>Great</b>", "csrf_token": csrf(client, "/help/satisfaction/good.token")})
    assert answer.status_code == 302 and fake.answers[-1] == (5, "<b>Great</b>")  # kept as typed, shown as text
    assert client.get("/help/satisfaction/good.token?rating=9").status_code == 200  # not a rating: shown, not recorded
    assert len(fake.answers) == 2


def test_a_forged_survey_link_is_a_clear_404(surveyed):
    _fake, client = surveyed
    answer = client.get("/help/satisfaction/forged?rating=1")
    assert answer.status_code == 404 and "survey_not_found" in answer.get_data(as_text=True)


def test_the_customer_marks_the_request_solved_and_reopens_it(mailing, sessions):
    from helpdesk_common.database import utcnow
    from helpdesk_gateway.portal import customers

    fake, client = mailing
    _email, cookie = customers.redeem_link(sessions, customers.make_link(sessions, "eva@example.se", utcnow()),
                                           utcnow())
    client.set_cookie("hd_customer", cookie, path="/help")
    page = client.get("/help/requests/HD-000001").get_data(as_text=True)
    assert 'id="solved"' in page and 'id="reopen"' not in page
    client.post("/help/requests/HD-000001/resolution", data={"solved": "1", "csrf_token": csrf(client, "/help/requests")})
    page = client.get("/help/requests/HD-000001").get_data(as_text=True)
    assert 'id="reopen"' in page
    (_number, resolution, viewer), = [args for _s, name, args in fake.calls if name == "resolve_by_customer"]
    assert resolution == {"solved": True} and viewer["role"] == "customer"
