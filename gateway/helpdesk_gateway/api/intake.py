"""The intake API: the portal's web form, signed webhooks (phone, social), and the operators' views of
the quarantine, the outgoing mail queue, channel configuration and a ticket's attachments.

Webhook signatures are verified here, in the gateway, not in intake: only the gateway has the exact
bytes the sender signed (a body re-serialised for RPC would not match), the architecture gives the
gateway the webhooks' signing, and a forged or replayed request is refused before it costs a broker
round trip. A sender signs ``<timestamp>.<raw body>`` with HMAC-SHA256 and the channel's shared secret::

    X-Helpdesk-Timestamp: 1767261600
    X-Helpdesk-Signature: sha256=<hex digest>

The timestamp must be within five minutes of the gateway's clock (replay protection). Secrets come from
``HELPDESK_WEBHOOK_SECRET_PHONE`` and ``HELPDESK_WEBHOOK_SECRET_SOCIAL``; a channel without one is off.
Webhook routes authenticate by signature alone (``public=True``): the app must let their paths through
without a bearer token.
"""
import hmac
import json
import os
import time

from flask import Blueprint, jsonify, request

from helpdesk_common.contracts import validate
from helpdesk_common.contracts.intake import (AttachmentView, ChannelsView, IntakeResult, OutgoingMailView,
                                               OutgoingQuery, PhoneCall, QuarantinedDetail, QuarantinedRaw,
                                               QuarantinedView, QuarantineQuery, QuarantineRetry, SocialMessage,
                                               WebForm, WebReply)
from helpdesk_common.errors import Forbidden, HelpdeskError, ValidationFailed
# The scheme is shared with intake's outbound webhooks; re-exported here for existing callers.
from helpdesk_common.webhooks import MAX_SKEW_SECONDS, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign  # noqa: F401

from . import json_body, operation, query_args, services, viewer

bp = Blueprint("intake", __name__, url_prefix="/api/v1")

SECRETS = {"phone": "HELPDESK_WEBHOOK_SECRET_PHONE", "social": "HELPDESK_WEBHOOK_SECRET_SOCIAL"}
WRITE_ERRORS = (400, 413, 415, 422)
WEBHOOK_HEADERS = {TIMESTAMP_HEADER: "Unix time of signing; within 5 minutes of the server's clock.",
                   SIGNATURE_HEADER: "sha256=<hex HMAC-SHA256 of '<timestamp>.<raw body>' with the shared secret>"}


class InvalidSignature(HelpdeskError):
    status = 401
    default_code = "invalid_signature"


def verify_signature(secret, timestamp, signature, body, now=None):
    """Raise InvalidSignature unless ``signature`` signs ``body`` at ``timestamp`` with ``secret``."""
    if not timestamp or not signature:
        raise InvalidSignature(f"Sign the request: headers {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}.",
                               code="missing_signature")
    try:
        moment = int(timestamp)
    except ValueError:
        raise InvalidSignature(f"{TIMESTAMP_HEADER} must be a Unix time in seconds.") from None
    if abs((now if now is not None else time.time()) - moment) > MAX_SKEW_SECONDS:
        raise InvalidSignature("The signature is too old or from the future; sign each request afresh.",
                               code="stale_signature")
    if not hmac.compare_digest(sign(secret, timestamp, body).encode(), signature.strip().encode()):
        raise InvalidSignature("The signature does not match the body.")


def _signed_json(channel):
    secret = os.environ.get(SECRETS[channel])
    if not secret:
        raise Forbidden(f"The {channel} webhook is not enabled on this installation.", code="webhook_disabled")
    body = request.get_data(cache=True)
    verify_signature(secret, request.headers.get(TIMESTAMP_HEADER), request.headers.get(SIGNATURE_HEADER), body)
    try:
        data = json.loads(body)
    except ValueError:
        raise HelpdeskError("The body is not valid JSON.", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.", code="invalid_body")
    return data


# Bodies with files: intake's WEB_FORM_MAX_BYTES (10 MB by default) in base64, and the form around them; the
# gateway's 1 MB body limit is for JSON without files.
UPLOAD_BODY_BYTES = 10 * 1024 * 1024 * 4 // 3 + 1024 * 1024
REPEATED = {200: IntakeResult}  # a repeated submission, call or message answers with what the first one made


def _result(answer):
    return jsonify(answer), (201 if answer["created"] and not answer.get("duplicate") else 200)


@operation(bp, "/intake/web-form", "POST", summary="Submit the portal's request form", tag="intake", body=WebForm,
           answer=IntakeResult, answer_status=201, other_answers=REPEATED, errors=WRITE_ERRORS + (403, 429))
def submit_web_form():
    """Opens a ticket (channel web) with attachments (base64) and custom fields. A repeated
    ``submission_id`` answers with the first ticket (200). Limited in size and per address per hour (429)."""
    request.max_content_length = UPLOAD_BODY_BYTES
    form = json_body()
    if viewer()["role"] == "customer":
        form.setdefault("requester", {"email": viewer()["email"]})
    validate(WebForm, form)
    return _result(send_web_form(form))


def send_web_form(form, who=None):
    """``who``: the caller's viewer by default; the portal's form passes the visitor's (a customer of the
    address typed, so intake applies a customer's limits)."""
    return services().call("intake", "submit_web_form", form, who or viewer())


@operation(bp, "/tickets/<number>/replies", "POST", summary="A customer's reply with files", tag="intake",
           body=WebReply, answer=IntakeResult, answer_status=201, other_answers=REPEATED, roles=("customer",),
           errors=WRITE_ERRORS + (403, 404, 409))
def submit_web_reply(number):
    """The portal's reply form: a public reply by the ticket's customer with 1-10 files (base64; together
    within the web form's limit, 413). The files are listed on the ticket
    (``GET /tickets/{number}/attachments``) and named in the message. A repeated ``reply_id`` answers as the
    first (one message). Replies without files: ``POST /tickets/{number}/messages``."""
    request.max_content_length = UPLOAD_BODY_BYTES
    reply = json_body()
    validate(WebReply, reply)
    answer = send_web_reply(number, reply)
    return jsonify(answer), 200 if answer.get("duplicate") else 201


def send_web_reply(number, reply):
    return services().call("intake", "submit_web_reply", number, reply, viewer())


@operation(bp, "/intake/webhooks/phone", "POST", summary="A call record from the call-centre system",
           tag="intake", body=PhoneCall, answer=IntakeResult, answer_status=201, other_answers=REPEATED, public=True,
           errors=(400, 401, 403, 413, 415, 422), headers=WEBHOOK_HEADERS)
def phone_webhook():
    """Signed with HMAC-SHA256 (see the headers). Opens a ticket (channel phone), or adds the call to
    ``ticket_number``; the same ``call_id`` twice is taken once."""
    call = _signed_json("phone")
    validate(PhoneCall, call, strict=False)
    return _result(services().call("intake", "record_phone_call", call))


@operation(bp, "/intake/webhooks/social", "POST", summary="A message from a social-media connector",
           tag="intake", body=SocialMessage, answer=IntakeResult, answer_status=201, other_answers=REPEATED, public=True,
           errors=(400, 401, 403, 413, 415, 422), headers=WEBHOOK_HEADERS)
def social_webhook():
    """Signed with HMAC-SHA256. A message in a known thread is added to its ticket; otherwise it opens
    one (channel social). The same ``message_id`` twice is taken once."""
    message = _signed_json("social")
    validate(SocialMessage, message)
    return _result(services().call("intake", "receive_social_message", message))


@operation(bp, "/intake/quarantine", "GET", summary="Messages that could not become tickets", tag="intake",
           query=QuarantineQuery, answer=QuarantinedView, answer_is_list=True, roles=("admin",), errors=(403, 422))
def list_quarantine():
    """Newest first, with the reason; the raw message is kept whole in intake's database."""
    return jsonify(services().call("intake", "list_quarantine", query_args(QuarantineQuery).model_dump()))


@operation(bp, "/intake/quarantine/<int:quarantine_id>", "GET", summary="Read a quarantined message", tag="intake",
           answer=QuarantinedDetail, roles=("admin",), errors=(403, 404))
def read_quarantined(quarantine_id):
    """Its headers, its parts, the text that could be read (parsed within the time budget) and the reason
    (``code``: unparseable, too_large, parse_failed, unauthenticated, refused)."""
    return jsonify(services().call("intake", "read_quarantined", quarantine_id))


@operation(bp, "/intake/quarantine/<int:quarantine_id>/raw", "GET", summary="Download a quarantined message",
           tag="intake", answer=QuarantinedRaw, roles=("admin",), errors=(403, 404))
def quarantined_raw(quarantine_id):
    """The message's bytes as they came, base64 in ``data`` (save them as ``filename``, an .eml file)."""
    return jsonify(services().call("intake", "quarantined_raw", quarantine_id))


@operation(bp, "/intake/quarantine/<int:quarantine_id>/retry", "POST", summary="Retry a quarantined message",
           tag="intake", body=QuarantineRetry, answer=QuarantinedView, roles=("admin",),
           errors=WRITE_ERRORS + (403, 404, 409))
def retry_quarantined(quarantine_id):
    """Runs the message through intake again: ``resolved`` with its ticket, or still ``held`` with the reason.
    ``trust_sender: true`` vouches for a sender the mail server did not (code ``unauthenticated``). The body
    may be left out. A message kept with its headers only (``too_large``) or discarded cannot be retried (409)."""
    options = json_body() if request.get_data(cache=True) else {}
    validate(QuarantineRetry, options)
    return jsonify(services().call("intake", "retry_quarantined", quarantine_id, options, viewer()))


@operation(bp, "/intake/quarantine/<int:quarantine_id>/discard", "POST", summary="Discard a quarantined message",
           tag="intake", answer=QuarantinedView, roles=("admin",), errors=(403, 404, 409))
def discard_quarantined(quarantine_id):
    """It is not to become a ticket: ``discarded``, recorded with who decided and when; the message is kept."""
    return jsonify(services().call("intake", "discard_quarantined", quarantine_id, viewer()))


@operation(bp, "/intake/outgoing", "GET", summary="The queue of mail to customers", tag="intake",
           query=OutgoingQuery, answer=OutgoingMailView, answer_is_list=True, roles=("admin",), errors=(403, 422))
def list_outgoing():
    """Newest first: ``pending`` (with its next attempt), ``sent``, or ``failed`` (with the last error)."""
    return jsonify(services().call("intake", "list_outgoing", query_args(OutgoingQuery).model_dump()))


@operation(bp, "/intake/outgoing/<int:mail_id>/retry", "POST", summary="Send a failed mail again", tag="intake",
           answer=OutgoingMailView, roles=("admin",), errors=(403, 404))
def retry_outgoing(mail_id):
    return jsonify(services().call("intake", "retry_outgoing", mail_id))


@operation(bp, "/intake/channels", "GET", summary="Channel configuration", tag="configuration",
           answer=ChannelsView, roles=("admin",), errors=(403,))
def get_channels():
    """Mailboxes (without passwords), SMTP, the support address, the ticket number pattern, the rule for
    replies to closed tickets."""
    return jsonify(services().call("intake", "get_channels"))


@operation(bp, "/tickets/<number>/attachments", "GET", summary="Files that came with a ticket's messages",
           tag="tickets", answer=AttachmentView, answer_is_list=True, errors=(404,))
def list_attachments(number):
    """Only for those who may see the ticket."""
    return jsonify(read_attachments(number))


def read_attachments(number):
    services().call("tickets", "get_ticket", number, viewer())  # 404 for a ticket this viewer may not see
    return services().call("intake", "list_attachments", number)
