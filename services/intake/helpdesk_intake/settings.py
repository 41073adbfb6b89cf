"""The intake service's settings, read once from its nameko config (see config.yaml)."""
import dataclasses
import ipaddress
import os
import re
import ssl
import urllib.parse
from dataclasses import dataclass, field
from typing import Optional

DEFAULT_TICKET_PATTERN = r"HD-\d{6,}"
LANGUAGES = ("en", "nl", "sv")
CLOSED_RULES = ("new_ticket", "reopen")


def _check_cafile(path):
    """A CA file that is not there stops the service at start-up, not at the first poll."""
    if path and not os.path.isfile(path):
        raise ValueError(f"the CA file {path} does not exist")


def _flag(value, default=False):
    if value is None or value == "":
        return default
    return str(value).strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class MailboxConfig:
    """One IMAP mailbox: where it is, how to log in, and where its mail goes."""

    scheme: str
    host: str
    port: int
    user: str
    password: str
    folder: str = "INBOX"
    team: Optional[str] = None
    language: Optional[str] = None
    processed_folder: Optional[str] = None
    starttls: bool = False
    tls_verify: bool = True
    cafile: Optional[str] = None

    @property
    def name(self):
        """How logs, events and the API name the mailbox (never with its password)."""
        return f"{self.scheme}://{self.user}@{self.host}:{self.port}/{self.folder}"

    def describe(self):
        return {"name": self.name, "team": self.team, "language": self.language,
                "processed_folder": self.processed_folder, "tls": self.scheme == "imaps" or self.starttls}


def tls_context(config):
    """The TLS context for a mailbox or the SMTP server (``MailboxConfig``, ``SmtpConfig``): the system's CAs
    or the config's ``cafile``; no verification only when the URL said ``tls_verify=false``."""
    context = ssl.create_default_context(cafile=config.cafile) if config.cafile else ssl.create_default_context()
    if not config.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _loopback(host):
    """Whether ``host`` is this machine (a password sent there never crosses a network)."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refuse_clear_credentials(what, scheme, host, tls, query):
    """A password is never sent in clear across a network unless the URL says ``plaintext=true``."""
    if not tls and not _loopback(host) and not _flag(query.get("plaintext")):
        raise ValueError(f"{what} {scheme}://{host} without TLS would send the password in clear: use "
                         f"{scheme}s:// or ?starttls=true (or ?plaintext=true to allow it explicitly)")


def parse_mailbox_url(url):
    """``imap[s]://user:pass@host[:port]/FOLDER?team=..&language=..&processed=..&starttls=..``."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("imap", "imaps"):
        raise ValueError(f"a mailbox URL must start with imap:// or imaps://, not {parts.scheme or '(none)'}://")
    if not parts.hostname or not parts.username:
        raise ValueError("a mailbox URL needs a user and a host: imaps://user:password@host/INBOX")
    query = dict(urllib.parse.parse_qsl(parts.query))
    unknown = set(query) - {"team", "language", "processed", "starttls", "tls_verify", "cafile", "plaintext"}
    if unknown:
        raise ValueError(f"unknown mailbox URL option(s): {', '.join(sorted(unknown))}")
    _check_cafile(query.get("cafile"))
    language = query.get("language") or None
    if language and language not in LANGUAGES:
        raise ValueError(f"mailbox language must be one of {', '.join(LANGUAGES)}")
    folder = urllib.parse.unquote(parts.path.lstrip("/")) or "INBOX"
    _refuse_clear_credentials("the mailbox", parts.scheme, parts.hostname,
                              parts.scheme == "imaps" or _flag(query.get("starttls")), query)
    return MailboxConfig(
        scheme=parts.scheme, host=parts.hostname, port=parts.port or (993 if parts.scheme == "imaps" else 143),
        user=urllib.parse.unquote(parts.username), password=urllib.parse.unquote(parts.password or ""),
        folder=folder, team=query.get("team") or None, language=language,
        processed_folder=query.get("processed") or None, starttls=_flag(query.get("starttls")),
        tls_verify=_flag(query.get("tls_verify"), True), cafile=query.get("cafile") or None)


def parse_mailbox_urls(value, cafile=None):
    """Every mailbox of a comma-separated list; ``cafile`` for those whose URL names none."""
    mailboxes = [parse_mailbox_url(url) for url in (value or "").split(",") if url.strip()]
    return [m if m.cafile or not cafile else dataclasses.replace(m, cafile=cafile) for m in mailboxes]


@dataclass(frozen=True)
class SmtpConfig:
    scheme: str
    host: str
    port: int
    user: Optional[str] = None
    password: Optional[str] = None
    starttls: bool = False
    tls_verify: bool = True
    cafile: Optional[str] = None
    timeout: float = 30.0

    def describe(self):
        return {"url": f"{self.scheme}://{self.host}:{self.port}", "auth": bool(self.user),
                "tls": self.scheme == "smtps" or self.starttls}


def parse_smtp_url(url, cafile=None):
    """``smtp://[user:pass@]host[:port][?starttls=true]`` or ``smtps://...`` (TLS from the start).

    Certificates are verified against the system's CAs, or ``cafile`` (``HELPDESK_TLS_CA_FILE``), or the
    URL's own ``cafile=``; ``tls_verify=false`` turns verification off (never in production)."""
    if not url:
        return None
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError(f"the SMTP URL must start with smtp:// or smtps://, not {parts.scheme or '(none)'}://")
    if not parts.hostname:
        raise ValueError("the SMTP URL needs a host: smtp://host:587?starttls=true")
    query = dict(urllib.parse.parse_qsl(parts.query))
    unknown = set(query) - {"starttls", "tls_verify", "cafile", "timeout", "plaintext"}
    if unknown:
        raise ValueError(f"unknown SMTP URL option(s): {', '.join(sorted(unknown))}")
    _check_cafile(query.get("cafile"))
    if parts.username:
        _refuse_clear_credentials("the SMTP server", parts.scheme, parts.hostname,
                                  parts.scheme == "smtps" or _flag(query.get("starttls")), query)
    return SmtpConfig(
        scheme=parts.scheme, host=parts.hostname, port=parts.port or (465 if parts.scheme == "smtps" else 25),
        user=urllib.parse.unquote(parts.username) if parts.username else None,
        password=urllib.parse.unquote(parts.password or "") if parts.username else None,
        starttls=_flag(query.get("starttls")), tls_verify=_flag(query.get("tls_verify"), True),
        cafile=query.get("cafile") or cafile or None, timeout=float(query.get("timeout") or 30))


def _number(value, default):
    """A number setting where 0 means something (no limit): only empty takes the default."""
    return default if value in (None, "") else value


def _floats(value, default):
    if value in (None, ""):
        return default
    if isinstance(value, (int, float)):
        return (float(value),)
    return tuple(float(v) for v in str(value).split(",") if v.strip())


@dataclass(frozen=True)
class Settings:
    mailboxes: tuple = ()
    smtp: Optional[SmtpConfig] = None
    support_address: str = "support@localhost.localdomain"
    support_name: str = "Helpdesk"
    ticket_pattern: str = DEFAULT_TICKET_PATTERN
    closed_rule: str = "new_ticket"
    attachments_dir: str = "var/attachments"
    templates_dir: Optional[str] = None
    default_language: str = "en"
    notify_statuses: tuple = ("pending", "resolved")
    mail_channels: tuple = ("email", "web")
    mail_max_attempts: int = 8
    mail_backoff: tuple = (5.0, 30.0, 120.0, 600.0, 1800.0)
    mail_poll_interval: float = 2.0
    imap_poll_interval: float = 5.0
    imap_idle: bool = True
    imap_batch_size: int = 200
    poll_timeout: float = 120.0
    claim_lease: float = 60.0
    web_form_max_bytes: int = 10 * 1024 * 1024
    web_form_rate_limit: int = 5
    web_form_rate_window: float = 3600.0
    placeholder_domain: Optional[str] = None
    tls_ca_file: Optional[str] = None
    social_connector_url: Optional[str] = None
    social_connector_secret: Optional[str] = None
    social_connector_timeout: float = 10.0
    # An address on the organisation's own network (or loopback) for the connector, http:// allowed there.
    social_connector_allow_internal: bool = False
    # Mail identity (intake/authresults.py): whose Authentication-Results to believe, and whether a mail
    # must be vouched for to be added to an existing ticket.
    mail_authserv_id: str = ""
    mail_require_auth: bool = True
    mail_ack_limit: int = 10         # acknowledgements per address per window; 0: no limit
    mail_ack_window: float = 3600.0
    # Hostile mail: the largest message fetched whole, the text a ticket keeps, the parse budget.
    mail_max_bytes: int = 25 * 1024 * 1024
    mail_max_text: int = 100_000
    parse_timeout: float = 10.0      # seconds one message may take in the parse worker
    parse_max_attempts: int = 3      # parses begun (across restarts) before a message is quarantined
    parse_worker: bool = True        # false: parse in the service's own process (no budget)
    # Retention (personal_data.purge_expired): days the text of read mail and attachments are kept; 0: for ever.
    raw_mail_retention_days: float = 0.0
    attachment_retention_days: float = 0.0
    retention_interval: float = 3600.0  # seconds between purges
    ticket_regex: object = field(default=None, compare=False)

    def __post_init__(self):
        if self.closed_rule not in CLOSED_RULES:
            raise ValueError(f"CLOSED_TICKET_RULE must be one of {', '.join(CLOSED_RULES)}")
        if self.default_language not in LANGUAGES:
            raise ValueError(f"DEFAULT_LANGUAGE must be one of {', '.join(LANGUAGES)}")
        try:
            regex = re.compile(r"(?<![\w-])(" + self.ticket_pattern + r")(?![\w])")
        except re.error as error:
            raise ValueError(f"TICKET_NUMBER_PATTERN is not a valid regular expression: {error}") from None
        object.__setattr__(self, "ticket_regex", regex)
        if self.mail_max_bytes < 1024 or self.mail_max_text < 1000 or self.parse_max_attempts < 1 \
                or self.parse_timeout <= 0:
            raise ValueError("MAIL_MAX_BYTES (>= 1024), MAIL_MAX_TEXT_CHARS (>= 1000), MAIL_PARSE_ATTEMPTS (>= 1) "
                             "and MAIL_PARSE_TIMEOUT (> 0) must be sensible")
        if self.raw_mail_retention_days < 0 or self.attachment_retention_days < 0 or self.retention_interval <= 0:
            raise ValueError("RAW_MAIL_RETENTION_DAYS and ATTACHMENT_RETENTION_DAYS (>= 0, 0: keep for ever) and "
                             "RETENTION_SWEEP_INTERVAL (> 0) must be sensible")
        if self.social_connector_url:
            if urllib.parse.urlsplit(self.social_connector_url).scheme not in ("http", "https"):
                raise ValueError("SOCIAL_CONNECTOR_URL must be an http:// or https:// URL")
            if not self.social_connector_secret:
                raise ValueError("SOCIAL_CONNECTOR_SECRET is needed to sign the replies sent to SOCIAL_CONNECTOR_URL")

    @property
    def support_domain(self):
        return self.support_address.rpartition("@")[2] or "localhost.localdomain"

    @classmethod
    def from_config(cls, config):
        get = config.get
        cafile = get("TLS_CA_FILE") or None
        _check_cafile(cafile)
        return cls(
            mailboxes=tuple(parse_mailbox_urls(get("IMAP_URLS"), cafile)),
            smtp=parse_smtp_url(get("SMTP_URL"), cafile),
            support_address=get("SUPPORT_ADDRESS") or cls.support_address,
            support_name=get("SUPPORT_NAME") or cls.support_name,
            ticket_pattern=get("TICKET_NUMBER_PATTERN") or DEFAULT_TICKET_PATTERN,
            closed_rule=get("CLOSED_TICKET_RULE") or "new_ticket",
            attachments_dir=get("ATTACHMENTS_DIR") or cls.attachments_dir,
            templates_dir=get("TEMPLATES_DIR") or None,
            default_language=get("DEFAULT_LANGUAGE") or "en",
            notify_statuses=tuple(s.strip() for s in str(get("NOTIFY_STATUSES") or "pending,resolved").split(",")
                                  if s.strip()),
            mail_max_attempts=int(get("MAIL_MAX_ATTEMPTS") or 8),
            mail_backoff=_floats(get("MAIL_BACKOFF"), cls.mail_backoff),
            mail_poll_interval=float(get("MAIL_POLL_INTERVAL") or 2),
            imap_poll_interval=float(get("IMAP_POLL_INTERVAL") or 5),
            imap_idle=_flag(get("IMAP_IDLE"), True),
            imap_batch_size=int(get("IMAP_BATCH_SIZE") or 200),
            poll_timeout=float(get("IMAP_POLL_TIMEOUT") or 120),
            claim_lease=float(get("CLAIM_LEASE_SECONDS") or 60),
            web_form_max_bytes=int(get("WEB_FORM_MAX_BYTES") or cls.web_form_max_bytes),
            web_form_rate_limit=int(get("WEB_FORM_RATE_LIMIT") or 5),
            web_form_rate_window=float(get("WEB_FORM_RATE_WINDOW") or 3600),
            placeholder_domain=get("PLACEHOLDER_EMAIL_DOMAIN") or None,
            tls_ca_file=cafile,
            social_connector_url=(get("SOCIAL_CONNECTOR_URL") or "").strip() or None,
            social_connector_secret=get("SOCIAL_CONNECTOR_SECRET") or None,
            social_connector_timeout=float(get("SOCIAL_CONNECTOR_TIMEOUT") or 10),
            social_connector_allow_internal=_flag(get("SOCIAL_CONNECTOR_ALLOW_INTERNAL"), False),
            mail_authserv_id=str(get("MAIL_AUTHSERV_ID") or "").strip().lower(),
            mail_require_auth=_flag(get("MAIL_REQUIRE_AUTH"), True),
            mail_ack_limit=int(_number(get("MAIL_ACK_LIMIT"), 10)),
            mail_ack_window=float(get("MAIL_ACK_WINDOW") or 3600),
            mail_max_bytes=int(get("MAIL_MAX_BYTES") or cls.mail_max_bytes),
            mail_max_text=int(get("MAIL_MAX_TEXT_CHARS") or cls.mail_max_text),
            parse_timeout=float(get("MAIL_PARSE_TIMEOUT") or 10),
            parse_max_attempts=int(get("MAIL_PARSE_ATTEMPTS") or 3),
            parse_worker=_flag(get("MAIL_PARSE_WORKER"), True),
            raw_mail_retention_days=float(get("RAW_MAIL_RETENTION_DAYS") or 0),
            attachment_retention_days=float(get("ATTACHMENT_RETENTION_DAYS") or 0),
            retention_interval=float(get("RETENTION_SWEEP_INTERVAL") or 3600),
        )

    def describe(self):
        return {"mailboxes": [m.describe() for m in self.mailboxes],
                "smtp": self.smtp.describe() if self.smtp else None,
                "support_address": self.support_address, "ticket_number_pattern": self.ticket_pattern,
                "closed_ticket_rule": self.closed_rule, "languages": list(LANGUAGES)}
