"""The customer's side of the portal: sign-in by mailed link, "my requests", and one request's public
conversation with a reply.

The link mail goes out through the platform's own outgoing mail: intake's queue (``send_account_mail``
over RPC), sent, retried and shown to operators like every other mail; the gateway writes the text in the
visitor's language because only it knows the link. Links point at ``HELPDESK_PUBLIC_URL`` when set (it
should be, in production): built from the Host header alone, a forged Host would mail a victim a link to
another site.

A signed-in customer acts as a customer token of their address would (``Identity(role="customer")``): the
tickets service shows them only the tickets of the contact known by that address, public messages only,
and answers a guessed number with the 404 of a missing ticket.
"""
import base64
import os
import uuid

from flask import current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import force_locale, gettext as _

from helpdesk_common.database import utcnow
from helpdesk_common.errors import HelpdeskError, InvalidTransition

from ..api import services
from ..api.intake import send_web_reply
from ..api.tickets import find_tickets, post_message, read_messages, read_ticket, read_workflow, resolve_by_customer
from ..auth import ANONYMOUS, Identity
from ..ui import live
from ..ui.security import accepts_files, secure_cookies
from . import bp, customers, uploads, visitor
from .asking import UPLOAD_BYTES, refusal_text
from .downloads import public_attachments

COOKIE = "hd_customer"
PAGE = 50


def _db():
    return current_app.extensions["helpdesk.db"]


@bp.before_request
def load_customer():
    g.customer = customers.session_email(_db(), request.cookies.get(COOKIE), utcnow())
    # The portal is the customer's view even for an agent signed in to the workspace in the same browser.
    g.identity = Identity(actor=g.customer, role="customer", email=g.customer) if g.customer else ANONYMOUS
    return None


def _signed_in_only():
    if not g.customer:
        return redirect(url_for(".sign_in_form", next=request.full_path.rstrip("?")))
    return None


@bp.get("/sign-in")
def sign_in_form():
    if g.customer:
        return redirect(url_for(".my_requests"))
    return render_template("portal/sign_in.html", email="", problem=None)


@bp.post("/sign-in")
def sign_in():
    email = request.form.get("email", "").strip()
    if not email or "@" not in email or len(email) > 254:
        return render_template("portal/sign_in.html", email=email,
                               problem=_("Enter your email address, like name@example.com.")), 422
    token = customers.make_link(_db(), email, utcnow())
    if token is None:
        return render_template("portal/sign_in.html", email=email,
                               problem=_("Several sign-in links were sent to this address in the last hour; use "
                                         "the newest one, or try again later.")), 429
    _send_link(email, token)
    return render_template("portal/sign_in_sent.html", email=email)


def _send_link(email, token):
    base = os.environ.get("HELPDESK_PUBLIC_URL") or request.host_url
    link = base.rstrip("/") + url_for(".sign_in_link", token=token)
    language = visitor.language()
    minutes = int(customers.LINK_LIFETIME.total_seconds() // 60)
    with force_locale(language):
        subject = _("Your sign-in link for the help centre")
        body = _("Hello,\n\nUse this link to sign in to the help centre as %(email)s and follow your requests. "
                 "It works once, for %(minutes)s minutes:\n\n%(link)s\n\n"
                 "If you did not ask for it, ignore this mail.\n", email=email, minutes=minutes, link=link)
    services().call("intake", "send_account_mail", {"to": email, "subject": subject, "body": body,
                                                    "language": language})


LINK_PROBLEMS = {"link_used": 410, "link_expired": 410, "link_unknown": 404}


def _link_refused(refused):
    texts = {"link_used": _("This sign-in link has been used already. Ask for a new one below."),
             "link_expired": _("This sign-in link has expired. Ask for a new one below."),
             "link_unknown": _("This sign-in link is not valid. Ask for a new one below.")}
    return render_template("portal/sign_in.html", email="", problem=texts[refused.code],
                           code=refused.code), LINK_PROBLEMS[refused.code]


@bp.get("/sign-in/<token>")
def sign_in_link(token):
    """Asks for a click before the link is used: mail scanners that fetch links must not spend it."""
    try:
        email = customers.check_link(_db(), token, utcnow())
    except customers.LinkRefused as refused:
        return _link_refused(refused)
    return render_template("portal/sign_in_confirm.html", email=email, token=token)


@bp.post("/sign-in/<token>")
def use_sign_in_link(token):
    try:
        _email, cookie = customers.redeem_link(_db(), token, utcnow(), request.cookies.get(COOKIE))
    except customers.LinkRefused as refused:
        return _link_refused(refused)
    response = redirect(url_for(".my_requests"))
    response.set_cookie(COOKIE, cookie, httponly=True, samesite="Lax", secure=secure_cookies(), path="/help")
    return response


@bp.post("/sign-out")
def sign_out():
    customers.end_session(_db(), request.cookies.get(COOKIE))
    response = redirect(url_for(".home"))
    response.delete_cookie(COOKIE, path="/help", httponly=True, samesite="Lax", secure=secure_cookies())
    return response


@bp.get("/requests")
def my_requests():
    refused = _signed_in_only()
    if refused:
        return refused
    page = find_tickets({"limit": PAGE, **({"cursor": request.args["cursor"]} if request.args.get("cursor") else {})})
    shared = any(ticket.get("yours") is False for ticket in page["items"])  # a shared organisation's colleagues'
    return render_template("portal/requests.html", tickets=page["items"], next_cursor=page["next_cursor"],
                           shared=shared)


@bp.get("/requests/<number>")
def follow_request(number):
    refused = _signed_in_only()
    if refused:
        return refused
    return _follow_page(number)


def _follow_context(number):
    ticket = read_ticket(number)  # the 404 of a missing ticket for anyone else's
    messages = [m for m in read_messages(number) if m.get("visibility") == "public"]  # the service's rule, kept
    categories = {item["name"]: item["category"] for item in read_workflow()["statuses"]}
    return {"ticket": ticket, "messages": messages, "category": categories.get(ticket["status"]),
            "attachments": public_attachments(number)}


def _follow_page(number, problem=None, status=200, problem_field="body", draft=""):
    """The open request; after a refused reply, with the reason and what was typed (files cannot be kept:
    a browser never lets a page fill in a file input)."""
    return render_template("portal/request_follow.html", problem=problem, problem_field=problem_field, draft=draft,
                           reply_id=uuid.uuid4().hex, accept=",".join(uploads.TYPES),
                           limits={"files": uploads.MAX_FILES, "mb": uploads.MAX_FILE_BYTES // (1024 * 1024)},
                           **_follow_context(number)), status


@bp.get("/requests/<number>/live")
def request_live(number):
    """The open request's live stream: the workspace's (``ui.live``), as this customer, for this ticket only
    (the ticket's 404 before it starts for anyone who may not see it). It only says "changed"; the page then
    fetches its status and conversation (``request_parts``)."""
    refused = _signed_in_only()
    if refused:
        return refused
    return live.stream(only=number)


@bp.get("/requests/<number>/parts")
def request_parts(number):
    """What the open request page fetches when the live stream says it changed: status and conversation."""
    refused = _signed_in_only()
    if refused:
        return refused
    return render_template("portal/_request_live.html", **_follow_context(number))


@bp.post("/requests/<number>/reply")
@accepts_files(UPLOAD_BYTES)
def reply(number):
    """A public reply; with files, through intake (``api.intake.send_web_reply``, as
    ``POST /api/v1/tickets/{number}/replies``), which keeps them as it keeps the request form's and lists them
    in the message. The files are checked here first, as the request form's (``uploads``): a refused one
    refuses the whole reply with the reason, what was typed kept, and nothing sent."""
    refused = _signed_in_only()
    if refused:
        return refused
    body = request.form.get("body", "").strip()[:100_000]
    files, refusal = uploads.check([(f.filename, f.read()) for f in request.files.getlist("attachments")])
    if refusal is not None:
        return _follow_page(number, refusal_text(refusal), 422, "attachments", body)
    if not body:
        return _follow_page(number, _("Write your reply first."), 422)
    if not files:
        post_message(number, {"body": body, "visibility": "public"})
    else:
        reply_id = request.form.get("reply_id", "")[:100] or uuid.uuid4().hex
        try:
            send_web_reply(number, {"body": body, "reply_id": reply_id, "attachments": [
                {"filename": f.filename, "content_type": f.content_type,
                 "content_base64": base64.b64encode(f.data).decode()} for f in files]})
        except HelpdeskError as error:
            if error.status not in (409, 413, 422):
                raise
            return _follow_page(number, _("This reply could not be taken: %(reason)s", reason=error.message),
                                error.status, "attachments", body)
    return redirect(url_for(".follow_request", number=number, _anchor="conversation"))


@bp.post("/requests/<number>/resolution")
def resolution(number):
    """"My problem is solved" or "Reopen": the workflow decides which status that is, and whether it may."""
    refused = _signed_in_only()
    if refused:
        return refused
    solved = request.form.get("solved") == "1"
    try:
        resolve_by_customer(number, {"solved": solved})
    except InvalidTransition:
        flash(_("This request cannot be changed that way now; reload the page to see its status."), "error")
        return redirect(url_for(".follow_request", number=number))
    flash(_("Marked as solved. Thank you!") if solved else _("Reopened: we will look at it again."), "success")
    return redirect(url_for(".follow_request", number=number))
