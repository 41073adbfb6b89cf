"""Ask for help: the request form (the organisation's custom fields, attachments), the articles suggested
while the subject is typed, and the confirmation with the ticket's number.

The form goes to intake's web form (``api.intake.send_web_form``, as ``POST /api/v1/intake/web-form``) as
the customer of the address typed, so intake applies a customer's limits (channel web, no say in team or
priority) and its rate limit per address. Attachments are checked here first (``uploads``): a refused
file refuses the whole request with a clear message and nothing is sent, so nothing is half-made. Each
rendered form carries a ``submission_id``: a double click makes one ticket.
"""
import base64
import uuid

from flask import g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _, lazy_gettext as _l

from helpdesk_common.errors import HelpdeskError

from ..api.intake import send_web_form
from ..api.tickets import read_custom_fields
from ..auth import Identity
from ..ui.security import accepts_files
from . import bp, uploads, visitor

# Formatted where used (``refusal_text``): a lazy text given some of its variables (``mb``) but not the
# others (``name``) raised KeyError when rendered, a 500 for a file over the limit.
REFUSALS = {
    "too_many_files": _l("Attach at most %(n)s files."),
    "file_too_large": _l("“%(name)s” is larger than %(mb)s MB; attach a smaller file."),
    "total_too_large": _l("The attachments together are larger than %(mb)s MB."),
    "type_not_allowed": _l("“%(name)s” is not a type we accept: attach PNG, JPEG, GIF, PDF, TXT, LOG or CSV files."),
    "content_mismatch": _l("“%(name)s” does not contain what its name says; attach the file itself."),
    "empty_file": _l("“%(name)s” is empty."),
}


def refusal_text(refusal):
    """The sentence for an ``uploads.Refusal``, in the visitor's language."""
    mb = (uploads.MAX_TOTAL_BYTES if refusal.code == "total_too_large" else uploads.MAX_FILE_BYTES) // (1024 * 1024)
    return str(REFUSALS[refusal.code]) % {"name": refusal.filename, "mb": mb, "n": uploads.MAX_FILES}


SLACK = 1024 * 1024  # the form's own fields, beside its files
UPLOAD_BYTES = uploads.MAX_TOTAL_BYTES + SLACK


@bp.get("/request")
def request_form():
    return blank_form(embedded=False)


def blank_form(embedded):
    values = {"subject": request.args.get("subject", "")[:200], "submission_id": uuid.uuid4().hex}
    return _form(values, {}, embedded=embedded)


@bp.post("/request")
@accepts_files(UPLOAD_BYTES)
def submit_request():
    return take_request(embedded=False)


def take_request(embedded):
    """The form as sent: refused with the reasons, or handed to intake. The portal's page answers with a
    redirect to the confirmation (kept in this browser's session); the embedded form (``embed.py``), which
    may have no cookies at all in another site's frame, shows the confirmation at once."""
    fields = read_custom_fields()
    values = {name: request.form.get(name, "").strip() for name in ("name", "email", "subject", "description")}
    values["submission_id"] = request.form.get("submission_id", "")[:100] or uuid.uuid4().hex
    problems = _required(values)
    custom = {}
    for field in fields:
        value, problem = _custom_value(field, request.form.get(f"cf_{field['name']}", "").strip())
        values[f"cf_{field['name']}"] = request.form.get(f"cf_{field['name']}", "")
        if problem:
            problems[f"cf_{field['name']}"] = problem
        elif value is not None:
            custom[field["name"]] = value
    files, refusal = uploads.check([(f.filename, f.read()) for f in request.files.getlist("attachments")])
    if refusal is not None:
        problems["attachments"] = refusal_text(refusal)
    if problems:
        return _form(values, problems, fields, status=422, embedded=embedded)
    form = {"subject": values["subject"], "description": values["description"], "language": visitor.language(),
            "requester": {"email": values["email"], **({"name": values["name"]} if values["name"] else {})},
            "custom_fields": custom, "submission_id": values["submission_id"],
            "attachments": [{"filename": f.filename, "content_type": f.content_type,
                             "content_base64": base64.b64encode(f.data).decode()} for f in files]}
    who = Identity(actor="portal", role="customer", email=values["email"].lower()).viewer(g.request_id)
    try:
        result = send_web_form(form, who)
    except HelpdeskError as refused:
        if refused.status == 429:
            problems["form"] = _("You have sent several requests in a short time; please wait a while and try "
                                 "again, or reply to the confirmation mail of an earlier one.")
        elif refused.status in (413, 422):
            problems["form"] = _("This request could not be taken: %(reason)s", reason=refused.message)
        else:
            raise
        return _form(values, problems, fields, status=refused.status, embedded=embedded)
    if embedded:
        return render_template("portal/request_sent.html", number=result["ticket_number"], email=values["email"],
                               layout=EMBED_LAYOUT), 201
    session["portal_sent"] = {"number": result["ticket_number"], "email": values["email"]}
    return redirect(url_for(".request_sent"))


@bp.get("/request/sent")
def request_sent():
    """The confirmation (from this browser's session only: a number in an address would tell nothing, but
    a page that anyone could reach with any number would look like it does)."""
    sent = session.get("portal_sent")
    if not sent:
        return redirect(url_for(".request_form"))
    return render_template("portal/request_sent.html", number=sent["number"], email=sent["email"])


EMBED_LAYOUT = "portal/embed_base.html"


def _form(values, problems, fields=None, status=200, embedded=False):
    fields = read_custom_fields() if fields is None else fields
    return render_template("portal/request.html", values=values, problems=problems, fields=fields,
                           layout=EMBED_LAYOUT if embedded else "portal/base.html",
                           action=url_for(".embed_submit" if embedded else ".submit_request"),
                           limits={"files": uploads.MAX_FILES, "mb": uploads.MAX_FILE_BYTES // (1024 * 1024)},
                           accept=",".join(uploads.TYPES)), status


def _required(values):
    problems = {}
    if not values["email"] or "@" not in values["email"] or len(values["email"]) > 254:
        problems["email"] = _("Enter your email address, like name@example.com.")
    if not values["subject"]:
        problems["subject"] = _("Say in a few words what this is about.")
    elif len(values["subject"]) > 200:
        problems["subject"] = _("Keep the subject under 200 characters.")
    if not values["description"]:
        problems["description"] = _("Describe what happened and what you need.")
    if len(values["name"]) > 200:
        problems["name"] = _("Keep the name under 200 characters.")
    return problems


def _custom_value(field, raw):
    """(value, problem) of one custom field as typed: typed values for intake, a sentence when wrong."""
    if not raw or (field["type"] == "boolean" and raw != "on"):
        if field["required"] and field["type"] != "boolean":
            return None, _("This field is required.")
        return (False if field["type"] == "boolean" else None), None
    kind = field["type"]
    try:
        if kind == "integer":
            return int(raw), None
        if kind == "number":
            return float(raw), None
    except ValueError:
        return None, _("Enter a number.")
    if kind == "boolean":
        return True, None
    if kind == "enum" and raw not in field.get("options", []):
        return None, _("Choose one of the options.")
    return raw[:200], None
