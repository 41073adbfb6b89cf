"""Bearer-token authentication and the identity a request acts as.

Tokens are random strings shown once at creation; the database keeps their SHA-256. Each token has
**scopes** (``read``: GET routes; ``write``: routes that change tickets, messages, chats, contacts, articles;
``admin``: routes only admins may call, on top of the admin role), and an **expiry** (90 days unless made
otherwise). Lookups are cached per worker, but every request first reads the ``token_version`` counter
(one primary-key read in the gateway's database, which every worker and replica shares): a revocation
raises it, so each worker drops its cache at its next request and a revoked token stops working at once.

The environment's ``HELPDESK_BOOTSTRAP_TOKEN`` is an admin token for a fresh install until an operator
rotates it (``helpdesk token rotate-bootstrap``): from then on only the stored bootstrap token works, and
each rotation revokes the one before.
"""
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select, update

from helpdesk_common.database import utcnow
from helpdesk_common.errors import HelpdeskError

from .models import ApiToken, GatewayCounter

ROLES = ("admin", "agent", "customer")
TOKEN_PREFIX = "hd_"
SCOPES = ("read", "write", "admin")
ROLE_SCOPES = {"admin": SCOPES, "agent": ("read", "write"), "customer": ("read", "write")}
"""The scopes a role's token may hold (and holds unless made with fewer)."""
DEFAULT_LIFETIME = timedelta(days=90)
TOKEN_VERSION, BOOTSTRAP_ROTATIONS = "token_version", "bootstrap_rotations"


class Unauthorized(HelpdeskError):
    status = 401
    default_code = "unauthorized"


@dataclass(frozen=True)
class Identity:
    """Who a request acts as: an actor id for history, a role, and what limits their view."""

    actor: str
    role: str
    email: str | None = None
    teams: tuple = field(default_factory=tuple)
    scopes: tuple = SCOPES  # a person signed in to the workspace holds every scope (the role still decides)
    expires_at: object = None

    def viewer(self, correlation_id):
        """The Viewer contract services receive with every call."""
        return {"actor": self.actor, "role": self.role, "email": self.email, "teams": list(self.teams),
                "correlation_id": correlation_id}


ANONYMOUS = Identity(actor="anonymous", role="anonymous")
"""A visitor without a token, on the routes that serve visitors (the portal's knowledge base, /health)."""


def hash_token(token):
    return hashlib.sha256(token.encode()).hexdigest()


def new_token():
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def create_token(sessions, name, role, email=None, teams=(), scopes=None, lifetime=DEFAULT_LIFETIME,
                 bootstrap=False):
    """Store a new token and return ``(id, token)``; the token itself is never stored.

    ``scopes``: a subset of the role's (default: all of them); ``lifetime``: a timedelta, or None for a token
    that never expires."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if role == "customer" and not email:
        raise ValueError("a customer token needs the customer's email")
    scopes = tuple(scopes) if scopes else ROLE_SCOPES[role]
    beyond = [scope for scope in scopes if scope not in ROLE_SCOPES[role]]
    if beyond:
        raise ValueError(f"a {role} token may hold only the scopes {', '.join(ROLE_SCOPES[role])}, not {', '.join(beyond)}")
    if lifetime is not None and lifetime <= timedelta(0):
        raise ValueError("a token's lifetime must be positive")
    token = new_token()
    with sessions.begin() as session:
        record = ApiToken(name=name, token_hash=hash_token(token), role=role, email=email, teams=list(teams),
                          scopes=[scope for scope in SCOPES if scope in scopes], bootstrap=bootstrap,
                          expires_at=utcnow() + lifetime if lifetime is not None else None)
        session.add(record)
        session.flush()
        return record.id, token


def _bump(session, name):
    """Raise a counter by one, in the caller's transaction (made at 1 on first use)."""
    if session.execute(update(GatewayCounter).where(GatewayCounter.name == name)
                       .values(value=GatewayCounter.value + 1)).rowcount == 0:
        session.add(GatewayCounter(name=name, value=1))
        session.flush()


def tokens_changed(session):
    """Tell every worker to drop its cached tokens (after revoking tokens in ``session`` directly)."""
    _bump(session, TOKEN_VERSION)


def revoke_token(sessions, token_id, session=None):
    """Revoke token ``token_id`` at once in every worker; returns the token record (None when unknown)."""
    def revoke(session):
        record = session.get(ApiToken, token_id)
        if record is not None and record.revoked_at is None:
            record.revoked_at = utcnow()
            _bump(session, TOKEN_VERSION)
        return record

    if session is not None:
        return revoke(session)
    with sessions.begin() as session:
        return revoke(session)


def rotate_bootstrap(sessions):
    """A new bootstrap admin token (never expires); the environment's and every earlier one stop working.
    Returns ``(id, token)``."""
    with sessions.begin() as session:
        for record in session.scalars(select(ApiToken).where(ApiToken.bootstrap.is_(True),
                                                             ApiToken.revoked_at.is_(None))):
            record.revoked_at = utcnow()
        _bump(session, BOOTSTRAP_ROTATIONS)
        _bump(session, TOKEN_VERSION)
    return create_token(sessions, "bootstrap", "admin", lifetime=None, bootstrap=True)


_COUNTERS = (f"SELECT name, value FROM {GatewayCounter.__tablename__} "
             f"WHERE name IN ('{TOKEN_VERSION}', '{BOOTSTRAP_ROTATIONS}')")  # constants: no parameters to bind


class Authenticator:
    """Turns an ``Authorization`` header into an :class:`Identity`, or raises Unauthorized."""

    def __init__(self, sessions, bootstrap_token=None, cache_seconds=30.0):
        self.sessions = sessions
        self.bootstrap_token = bootstrap_token
        self.cache_seconds = cache_seconds
        self._cache = {}
        self._lock = threading.Lock()
        self._version = None
        self._bootstrap_rotated = False

    def _check_version(self):
        """Drop the cache when any token was revoked since the last request (in any worker).

        Every request pays for this read, so it is one constant statement on the pool's DBAPI connection:
        through an ORM session (on SQLite also taking the write lock, as every session there does) it cost
        the gateway more CPU per request than the rest of the authentication together, and through Core
        still 0.3–0.5 ms."""
        connection = self.sessions.kw["bind"].raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(_COUNTERS)
            counters = dict(cursor.fetchall())
            cursor.close()
        finally:
            connection.close()  # back to the pool, which ends the read (rollback)
        version = counters.get(TOKEN_VERSION, 0)
        with self._lock:
            if version != self._version:
                self._cache.clear()
                self._version = version
            self._bootstrap_rotated = counters.get(BOOTSTRAP_ROTATIONS, 0) > 0

    def identify(self, header):
        if not header:
            raise Unauthorized("Send an API token: 'Authorization: Bearer <token>'.", code="missing_token")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("Use the Bearer scheme: 'Authorization: Bearer <token>'.", code="invalid_token")
        self._check_version()
        if (self.bootstrap_token and not self._bootstrap_rotated
                and hmac.compare_digest(token.encode(), self.bootstrap_token.encode())):
            return Identity(actor="bootstrap", role="admin")
        digest = hash_token(token)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached and cached[1] > now:
            identity = cached[0]
        else:
            identity = self._load(digest)
            with self._lock:
                if identity is None:  # never remember unknown tokens: any client could grow the cache unbounded
                    self._cache.pop(digest, None)
                else:
                    self._cache[digest] = (identity, now + self.cache_seconds)
        if identity is None:
            raise Unauthorized("This API token is unknown or was revoked.", code="invalid_token")
        if identity.expires_at is not None and identity.expires_at <= utcnow():
            raise Unauthorized("This API token has expired; ask an administrator for a new one.", code="token_expired")
        return identity

    def _load(self, digest):
        with self.sessions() as session:
            record = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest,
                                                           ApiToken.revoked_at.is_(None)))
            if record is None:
                return None
            return Identity(actor=f"token:{record.id}", role=record.role, email=record.email,
                            teams=tuple(record.teams or ()), expires_at=record.expires_at,
                            scopes=tuple(record.scopes) if record.scopes is not None else ROLE_SCOPES[record.role])
