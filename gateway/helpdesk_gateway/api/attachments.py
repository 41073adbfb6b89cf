"""Downloading a ticket's attachment, safely: always as a download (never shown in the page), under a
name that cannot break the header, with a content type that cannot run in the browser."""
import base64
import re
import unicodedata
from urllib.parse import quote

from flask import Blueprint, Response

from . import operation, services, viewer

bp = Blueprint("attachments", __name__, url_prefix="/api/v1")

# Types a browser shows without running anything; everything else goes out as bytes.
SAFE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain", "text/csv"}


@operation(bp, "/tickets/<number>/attachments/<int:attachment_id>", "GET", summary="Download an attachment",
           tag="tickets", media_type="application/octet-stream", errors=(404,))
def download_attachment(number, attachment_id):
    """The file as a download (``Content-Disposition: attachment``), for those who may see the ticket.
    Types that could run in a browser (HTML, SVG, scripts...) are sent as ``application/octet-stream``."""
    return attachment_response(read_attachment(number, attachment_id))


def read_attachment(number, attachment_id):
    services().call("tickets", "get_ticket", number, viewer())  # the ticket's 404 for those who may not see it
    return services().call("intake", "read_attachment", number, attachment_id)


def safe_name(filename):
    """An ASCII name for the plain ``filename=`` (no quotes, slashes, control characters)."""
    ascii_name = unicodedata.normalize("NFKD", filename or "").encode("ascii", "ignore").decode()
    ascii_name = re.sub(r"[^A-Za-z0-9._ -]", "_", ascii_name).strip(" .") or "attachment"
    return ascii_name[:150]


def attachment_response(file):
    content_type = (file.get("content_type") or "").split(";")[0].strip().lower()
    if content_type not in SAFE_TYPES:
        content_type = "application/octet-stream"
    elif content_type.startswith("text/"):
        content_type += "; charset=utf-8"
    name = file.get("filename") or "attachment"
    response = Response(base64.b64decode(file["content"]), content_type=content_type)
    response.headers["Content-Disposition"] = (f'attachment; filename="{safe_name(name)}"; '
                                               f"filename*=UTF-8''{quote(name[:200], safe='')}")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response
