"""A customer's attachments in the portal: the files that came with the request's messages, listed on the
open request and downloaded through the REST route's own functions (``api.intake.read_attachments``,
``api.attachments.read_attachment``/``attachment_response``), as the signed-in customer.

Who may: whoever may read the request (the tickets service's judgement: the customer's own, or a
colleague's in a sharing organisation); anyone else gets the ticket's 404, so a guessed number or
attachment id shows nothing. What: intake keeps only files that came in through a channel with a
customer's message (mail, the web form), which are public; agents attach nothing to internal notes.
How: always a download (``Content-Disposition: attachment``), an ASCII-safe name, and a type that cannot
run in the browser (HTML, SVG, scripts go out as ``application/octet-stream``), sandboxed by its own CSP.
"""
from ..api.attachments import attachment_response, read_attachment
from ..api.intake import read_attachments
from . import bp


def public_attachments(number):
    return [a for a in read_attachments(number) if not a.get("inline")]  # inline parts are the mail's pictures


@bp.get("/requests/<number>/attachments/<int:attachment_id>")
def download(number, attachment_id):
    from .account import _signed_in_only  # noqa: PLC0415  (account imports this module)

    refused = _signed_in_only()
    if refused:
        return refused
    return attachment_response(read_attachment(number, attachment_id))
