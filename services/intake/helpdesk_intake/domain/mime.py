"""Real-world MIME into what a ticket needs: sender, subject, text, HTML, attachments, thread headers.

Plain functions, no I/O. Mail in the wild is lenient, so the parser is too: unknown or lying charsets
fall back (UTF-8, then Windows-1252, which also reads ISO-8859-1), raw 8-bit headers are decoded the
same way, RFC 2047 encoded words and RFC 2231 file names are decoded. Only a message with no usable
sender, or one the parser cannot read at all, is refused (:class:`Unparseable`), to be quarantined.
"""
import email
import email.header
import email.message
import email.utils
import hashlib
import re
from dataclasses import dataclass, field
from email import policy
from typing import Optional

from .htmltext import html_to_text
from .quoting import split_reply

_SPACES = re.compile(r"\s+")
# Bounds on what hostile mail can make the parser do (every regex and decoder below sees at most this much):
MAX_ADDRESS_HEADER = 16_000     # From/To/Cc/Reply-To: hundreds of recipients fit
MAX_TEXT_HEADER = 2_000         # Subject and other free text: the ticket keeps 200 characters of a subject
MAX_REFERENCES_HEADER = 20_000  # References/In-Reply-To: ~300 Message-IDs
MAX_AUTH_RESULTS = 8_000        # one Authentication-Results header
MAX_TEXT = 100_000              # characters of text a ticket gets; the whole text goes along as a file
MAX_HTML_KEPT = 1_000_000       # characters of HTML kept with the message; a larger HTML goes along as a file
MAX_PARTS = 1_000               # MIME parts read; a mail of 100,000 tiny parts would make 100,000 files
FULL_TEXT_NAME = "full-text.txt"
FULL_HTML_NAME = "message.html"
_MSGID = re.compile(r"<([^<>\s]{1,498})>")
_ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\"]+$")
BULK_PRECEDENCE = {"bulk", "junk", "list", "auto_reply", "auto-reply"}
REPORT_TYPES = {"delivery-status", "disposition-notification", "feedback-report"}
DAEMONS = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon|noreply-dmarc-support|"
                     r"bounce[s]?)(@|$)", re.I)


class Unparseable(ValueError):
    """The message cannot become a ticket; the reason says why (kept with the quarantined message)."""


@dataclass
class ParsedAttachment:
    filename: str
    content_type: str
    data: bytes
    content_id: Optional[str] = None
    inline: bool = False

    @property
    def sha256(self):
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class ParsedMail:
    message_id: Optional[str]
    sender_email: str
    sender_name: Optional[str]
    subject: str
    text: str
    new_text: str
    quoted_text: str
    html: Optional[str]
    in_reply_to: list = field(default_factory=list)
    references: list = field(default_factory=list)
    to: list = field(default_factory=list)
    cc: list = field(default_factory=list)
    date: Optional[str] = None
    language: Optional[str] = None
    attachments: list = field(default_factory=list)
    automatic: Optional[str] = None
    """Why this is an auto-reply, bounce or bulk mail (never a ticket); None for a person's mail."""
    content_hash: str = ""
    reply_to: Optional[str] = None
    """A single Reply-To address other than the sender's: where the sender asked answers to go."""
    auth_results: list = field(default_factory=list)
    """The ``Authentication-Results`` header values, topmost first (see :mod:`intake.authresults`)."""


def decode_bytes(data, charset=None):
    """Text of ``data`` in its declared charset; a missing, unknown or wrong one falls back."""
    for candidate in (charset, "utf-8"):
        if not candidate:
            continue
        candidate = candidate.strip().strip('"').lower()
        if candidate in ("unknown-8bit", "x-unknown", "8bit", "default"):
            continue
        if candidate in ("us-ascii", "ascii") and any(b > 127 for b in data):
            continue  # declared ASCII, sent 8-bit: guess below
        try:
            return _without_nul(data.decode(candidate))
        except (LookupError, UnicodeDecodeError):
            continue
    return _without_nul(data.decode("cp1252", errors="replace"))


def _without_nul(text):
    """A NUL means nothing in mail text, and PostgreSQL stores none: dropped, or the mail could never land."""
    return text.replace("\x00", "") if "\x00" in text else text


def decode_header(value):
    """A header's text: RFC 2047 encoded words decoded, raw 8-bit bytes guessed, whitespace folded."""
    if value is None:
        return ""
    value = str(value)
    if not value.isascii() and any("\udc80" <= ch <= "\udcff" for ch in value):  # raw 8-bit bytes kept
        value = decode_bytes(value.encode("ascii", "surrogateescape"))
    value = _without_nul(value)
    if "=?" not in value:  # no encoded word: nothing to decode (most headers; the decoder is slow)
        return _SPACES.sub(" ", value).strip()
    try:
        parts = email.header.decode_header(value)
    except Exception:  # a malformed encoded word: keep the text as it came
        return re.sub(r"\s+", " ", value).strip()
    out = []
    for chunk, charset in parts:
        out.append(decode_bytes(chunk, charset) if isinstance(chunk, bytes) else chunk)
    return re.sub(r"\s+", " ", "".join(out)).strip()


class _Headers:
    """A message's (or part's) headers by lower-cased name, as sent: raw 8-bit bytes kept as surrogates,
    not mangled into a Header. Indexed in one pass: a mail needs a dozen lookups, and the ``Message``
    scans every header for each (the largest part of parsing in the profile)."""

    def __init__(self, msg):
        self.values = {}
        for key, value in msg.raw_items():
            self.values.setdefault(key.lower(), []).append(value)

    def all(self, name):
        return self.values.get(name.lower(), [])

    def first(self, name):
        values = self.values.get(name.lower())
        return values[0] if values else None


# The forms nearly every mail's From and To take: ``addr``, ``<addr>``, ``Name <addr>`` and ``"Name" <addr>``,
# with nothing in them that RFC 5322's address grammar treats specially (no comments, escapes, groups or
# second address). These read the same here as through ``email.utils.getaddresses``, at a tenth of the
# cost; any other value takes the full parser.
_ADDR_SPEC = r"""([A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+)"""
_BARE_ADDRESS = re.compile(r"\s*<?" + _ADDR_SPEC + r">?\s*")
# The unquoted name's class holds the white space itself: a name pattern between two ``\s*`` backtracked
# quadratically on a long run of spaces with no ``<`` after it.
_NAMED_ADDRESS = re.compile(r"""(?:\s*"([^"\\]*)"\s*|([A-Za-z0-9\s!#$%&'*+/=?^_`{|}~-]*))<""" + _ADDR_SPEC + r">\s*")


def _address_pairs(value):
    """``[(display name, address)]`` of one raw header value, as ``email.utils.getaddresses`` reads it."""
    value = value[:MAX_ADDRESS_HEADER]
    bare = _BARE_ADDRESS.fullmatch(value)
    if bare and value.count("<") == value.count(">"):
        return [("", bare.group(1))]
    named = _NAMED_ADDRESS.fullmatch(value)
    if named:
        quoted, name, address = named.groups()
        return [(quoted if quoted is not None else " ".join(name.split()), address)]
    return email.utils.getaddresses([value])


def _addresses(headers, name):
    result = []
    for value in headers.all(name):
        for display, address in _address_pairs(str(value)):
            address = decode_header(address).strip().strip("<>").lower()
            if len(address) <= 254 and _ADDRESS.match(address):  # RFC 5321's limit; the pattern backtracks
                result.append((decode_header(display[:MAX_TEXT_HEADER]) or None, address))
    return result


def _message_ids(value):
    # Message-IDs are never encoded words: not decoded (the stdlib's encoded-word pattern is quadratic on a
    # long line of "=?"), and only the last MAX_REFERENCES_HEADER characters (References grows at its end).
    return _MSGID.findall(_unescape(value)[-MAX_REFERENCES_HEADER:]) if value else []


def _cut(value, limit):
    """At most ``limit`` characters of a raw header value (None stays None)."""
    return None if value is None else str(value)[:limit]


def _unescape(value):
    """A raw header value with its 8-bit bytes (kept as surrogates) decoded to text."""
    value = str(value)
    if not value.isascii() and any("\udc80" <= ch <= "\udcff" for ch in value):
        value = decode_bytes(value.encode("ascii", "surrogateescape"))
    return value


def _part_headers(raw):
    """A part's Content-Type and Content-Disposition (from its :class:`_Headers`) as a small message whose
    parameters can be read even when a client wrote raw UTF-8 into a file name."""
    headers = email.message.Message()
    for name in ("Content-Type", "Content-Disposition"):
        value = raw.first(name)
        if value is not None:
            headers[name] = _unescape(value)[:2 * MAX_TEXT_HEADER]
    return headers


def _part_filename(raw):
    """The file name a part's headers (its :class:`_Headers`) give, or None."""
    declared = (raw.first("Content-Type") or "") + (raw.first("Content-Disposition") or "")
    if "name" not in declared.lower():  # neither filename= nor name= (nor their RFC 2231 forms)
        return None
    return _filename(_part_headers(raw))


def _filename(headers):
    try:
        name = headers.get_filename()
    except Exception:
        name = headers.get_param("name")
    if isinstance(name, tuple):  # RFC 2231 (charset, language, value)
        name = email.utils.collapse_rfc2231_value(name)
    name = decode_header(name) if name else None
    if name:
        name = re.sub(r"[\x00-\x1f/\\]", "_", name).strip(". ") or None
    return name


_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "application/pdf": ".pdf",
               "message/rfc822": ".eml", "text/plain": ".txt", "text/html": ".html", "text/calendar": ".ics"}


def automatic_reason(msg, sender, headers=None):
    """Why ``msg`` is machine-sent (auto-reply, bounce, bulk), or None. ``headers``: its
    :class:`_Headers`, when the caller has them."""
    headers = headers or _Headers(msg)

    def get(name):
        return _unescape(headers.first(name) or "")

    auto_submitted = get("Auto-Submitted").strip().lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return f"auto_submitted:{auto_submitted.split(';')[0]}"
    precedence = get("Precedence").strip().lower()
    if precedence in BULK_PRECEDENCE:
        return f"precedence:{precedence}"
    for header in ("X-Autoreply", "X-Autorespond", "X-Autorespond-Pro", "X-Auto-Reply"):
        if headers.first(header) is not None:
            return "x_autoreply"
    if msg.get_content_type() == "multipart/report":
        return f"report:{(msg.get_param('report-type') or 'unknown').lower()}"
    for part in msg.walk():
        if part.get_content_type() in ("message/delivery-status", "message/disposition-notification",
                                       "message/feedback-report"):
            return f"report:{part.get_content_type().split('/')[1]}"
    return_path = get("Return-Path").strip()
    if return_path == "<>" or DAEMONS.match(sender or ""):
        return "bounce"
    if get("List-Id") or get("List-Unsubscribe"):
        return "bulk:list"
    return None


def content_hash(sender, subject, date, text, html, attachments):
    """What makes two copies of one message the same, whatever their Message-ID or transport headers."""
    digest = hashlib.sha256()
    for piece in (sender, subject, date or "", text, html or ""):
        digest.update(piece.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    for attachment in attachments:
        digest.update(attachment.sha256.encode())
    return digest.hexdigest()


def parse(raw: bytes, max_text: int = MAX_TEXT) -> ParsedMail:
    """Parse ``raw`` (the whole RFC 5322 message) or raise :class:`Unparseable`. The text is cut at
    ``max_text`` characters; the whole of it is then an attachment (``full-text.txt``)."""
    if not raw or not raw.strip():
        raise Unparseable("empty message")
    try:
        msg = email.message_from_bytes(raw, policy=policy.compat32)
    except Exception as error:  # the stdlib parser hardly ever raises, but never crash on it
        raise Unparseable(f"the MIME parser failed: {type(error).__name__}: {error}") from None
    if not msg.keys():
        raise Unparseable("no headers: this is not an email message")
    try:
        return _parse(msg, max_text)
    except Unparseable:
        raise
    except Exception as error:
        raise Unparseable(f"the message could not be read: {type(error).__name__}: {error}") from None


def _parse(msg, max_text=MAX_TEXT):
    top = _Headers(msg)
    senders = _addresses(top, "From") or _addresses(top, "Sender")
    reply_to = _addresses(top, "Reply-To")
    if not senders:
        raw_from = top.first("From")
        raise Unparseable("no usable sender address" + (f" in From: {decode_header(raw_from)[:200]!r}"
                                                        if raw_from else " (no From header)"))
    # The sender is From: a Reply-To says where answers go, never who wrote (a single Reply-To used to
    # replace the sender, so any mail could post as a customer by naming them there).
    sender_name, sender_email = senders[0]
    reply_address = reply_to[0][1] if len(reply_to) == 1 and reply_to[0][1] != sender_email else None
    subject = decode_header(_cut(top.first("Subject"), MAX_TEXT_HEADER))

    plains, htmls, attachments = [], [], []
    read, skipped = 0, 0
    for part in msg.walk():
        if part.is_multipart():
            continue
        read += 1
        if read > MAX_PARTS:
            skipped += 1
            continue
        ctype = part.get_content_type()
        raw = top if part is msg else _Headers(part)
        disposition = _unescape(raw.first("Content-Disposition") or "").split(";")[0].strip().lower()
        filename = _part_filename(raw)
        content_id = _unescape(raw.first("Content-ID") or "").strip().strip("<>") or None
        payload = part.get_payload(decode=True)
        if payload is None:
            payload = b""
        if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            text = decode_bytes(payload, part.get_content_charset())
            (plains if ctype == "text/plain" else htmls).append(text)
            continue
        if ctype in ("message/delivery-status", "message/disposition-notification", "message/feedback-report"):
            continue
        if ctype == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner:
                payload = inner[0].as_bytes()
        if not payload and not filename:
            continue
        inline = disposition == "inline" or (disposition != "attachment" and content_id is not None)
        name = filename or f"{'inline' if inline else 'attachment'}-{len(attachments) + 1}" \
            f"{_EXTENSIONS.get(ctype, '.bin')}"
        attachments.append(ParsedAttachment(filename=name, content_type=ctype, data=payload,
                                            content_id=content_id, inline=inline))

    html = "\n".join(htmls) if htmls else None
    if plains:
        text = "\n\n".join(p.strip("\n") for p in plains)
    elif html:
        text = html_to_text(html)
    else:
        text = ""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if skipped:
        text += f"\n\n[… {skipped} more MIME parts were not read (over {MAX_PARTS})]"
    whole_text, whole_html = text, html
    if len(text) > max_text:  # a sane ticket; the whole text stays with it as a file
        attachments.append(ParsedAttachment(filename=FULL_TEXT_NAME, content_type="text/plain",
                                            data=text.encode("utf-8", "surrogatepass")))
        text = text[:max_text].rstrip() + f"\n\n[… {len(text) - max_text} more characters in {FULL_TEXT_NAME}]"
    if html is not None and len(html) > MAX_HTML_KEPT:
        attachments.append(ParsedAttachment(filename=FULL_HTML_NAME, content_type="text/html",
                                            data=html.encode("utf-8", "surrogatepass")))
        html = None
    new_text, quoted = split_reply(text)
    if not new_text and quoted:  # everything looked quoted: better too much than nothing
        new_text, quoted = text, ""

    message_ids = _message_ids(top.first("Message-ID"))
    language = _unescape(top.first("Content-Language") or "")[:100].strip().lower()[:2] or None
    date = decode_header(_cut(top.first("Date"), 200)) or None
    parsed = ParsedMail(
        message_id=message_ids[0] if message_ids else None,
        sender_email=sender_email, sender_name=sender_name, subject=subject, text=text, new_text=new_text,
        quoted_text=quoted, html=html, in_reply_to=_message_ids(top.first("In-Reply-To")),
        references=_message_ids(top.first("References")),
        to=[a for _, a in _addresses(top, "To")], cc=[a for _, a in _addresses(top, "Cc")],
        date=date, language=language if language and language.isalpha() else None,
        attachments=attachments, automatic=automatic_reason(msg, senders[0][1], top), reply_to=reply_address,
        auth_results=[_unescape(v)[:MAX_AUTH_RESULTS] for v in top.all("Authentication-Results")[:20]],
    )
    parsed.content_hash = content_hash(sender_email, subject, date, whole_text, whole_html, attachments)
    return parsed


def strip_reply_prefixes(subject):
    """The subject without "Re:", "Fwd:", "AW:", "SV:", "Antw:" ... prefixes."""
    # The pattern sees the head of the subject only (prefixes are at its start).
    return (_REPLY_PREFIXES.sub("", subject[:MAX_TEXT_HEADER]) + subject[MAX_TEXT_HEADER:]).strip()


# No two white-space runs meet (the old "\s*(\[\d+\])?\s*" before the colon backtracked quadratically on
# "Re" and a long run of spaces).
_REPLY_PREFIXES = re.compile(r"^(?:\s*(?:re|fw|fwd|aw|sv|vs|antw|antwoord|wg|doorst|ref)(?:\s*\[\d+\])?\s*:)+\s*",
                             re.I)
