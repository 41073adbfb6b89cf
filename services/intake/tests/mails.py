"""Real-world shaped test messages, built as bytes the way mail clients send them."""
import base64
import uuid
from email.utils import format_datetime
from datetime import datetime, timezone


def msgid():
    return f"{uuid.uuid4().hex}@client.example"


AUTHSERV_ID = "mx.helpdesk.test"  # the tests' receiving server (MAIL_AUTHSERV_ID in their intake config)


def passed(address, server=AUTHSERV_ID):
    """The ``Authentication-Results`` header our receiving server writes on mail whose From domain passed
    DMARC: what makes intake add a reply from ``address`` to a ticket (see intake/authresults.py)."""
    domain = address.rpartition("@")[2].strip(">")
    return {"Authentication-Results": f"{server}; spf=pass smtp.mailfrom={domain}; dkim=pass header.d={domain}; "
                                      f"dmarc=pass (p=reject) header.from={domain}"}


def _headers(sender, subject, message_id, extra):
    lines = [f"From: {sender}", "To: support@helpdesk.test", f"Subject: {subject}",
             f"Date: {format_datetime(datetime.now(timezone.utc))}", f"Message-ID: <{message_id}>",
             "MIME-Version: 1.0"]
    lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
    return "\r\n".join(lines)


def plain(sender, subject, body, message_id=None, charset="utf-8", extra=None):
    message_id = message_id or msgid()
    encoded = base64.encodebytes(body.encode(charset)).decode()
    head = _headers(sender, subject, message_id, extra)
    return (f"{head}\r\nContent-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            f"{encoded}").encode()


def html_only(sender, subject, html, message_id=None, extra=None):
    message_id = message_id or msgid()
    head = _headers(sender, subject, message_id, extra)
    return (f"{head}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            f"{html}\r\n").encode()


def with_attachment(sender, subject, text, html, filename, data, content_type="application/pdf",
                    inline_image=None, message_id=None):
    message_id = message_id or msgid()
    head = _headers(sender, subject, message_id, None)
    parts = [
        "--outer", "Content-Type: multipart/related; boundary=\"rel\"", "",
        "--rel", "Content-Type: multipart/alternative; boundary=\"alt\"", "",
        "--alt", "Content-Type: text/plain; charset=utf-8", "", text, "",
        "--alt", "Content-Type: text/html; charset=utf-8", "", html, "",
        "--alt--", "",
    ]
    if inline_image is not None:
        parts += ["--rel", "Content-Type: image/png", "Content-Transfer-Encoding: base64",
                  "Content-ID: <logo@client>", "Content-Disposition: inline", "",
                  base64.encodebytes(inline_image).decode(), ""]
    parts += ["--rel--", "",
              "--outer", f"Content-Type: {content_type}; name=\"{filename}\"",
              "Content-Transfer-Encoding: base64", f"Content-Disposition: attachment; filename=\"{filename}\"", "",
              base64.encodebytes(data).decode(), "", "--outer--", ""]
    return (f"{head}\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n" + "\r\n".join(parts)).encode()


def bounce(to_address, original_subject):
    message_id = msgid()
    head = _headers("Mail Delivery System <MAILER-DAEMON@mx.example>", "Undelivered Mail Returned to Sender",
                    message_id, {"Return-Path": "<>", "Auto-Submitted": "auto-replied"})
    body = "\r\n".join([
        "--b", "Content-Type: text/plain", "", f"Your message to {to_address} could not be delivered.", "",
        "--b", "Content-Type: message/delivery-status", "", "Reporting-MTA: dns; mx.example", "",
        f"Final-Recipient: rfc822; {to_address}", "Action: failed", "Status: 5.1.1", "",
        "--b", "Content-Type: text/rfc822-headers", "", f"Subject: {original_subject}", "", "--b--", ""])
    head = head.replace("\r\nAuto-Submitted: auto-replied", "")
    return (f"{head}\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
            + body).encode()
