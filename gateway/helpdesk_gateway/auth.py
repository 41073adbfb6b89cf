"""Bearer-token authentication and the identity a request acts as.

Tokens are random strings shown once at creation; the database keeps their SHA-256. Lookups are cached
for a few seconds (a revoked token stops working within ``token_cache_seconds``), so authentication
costs no database round trip on the hot path.
"""
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import select

from helpdesk_common.errors import HelpdeskError

from .models import ApiToken

ROLES = ("admin", "agent", "customer")
TOKEN_PREFIX = "hd_"


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


def create_token(sessions, name, role, email=None, teams=()):
    """Store a new token and return ``(id, token)``; the token itself is never stored."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if role == "customer" and not email:
        raise ValueError("a customer token needs the customer's email")
    token = new_token()
    with sessions.begin() as session:
        record = ApiToken(name=name, token_hash=hash_token(token), role=role, email=email, teams=list(teams))
        session.add(record)
        session.flush()
        return record.id, token


class Authenticator:
    """Turns an ``Authorization`` header into an :class:`Identity`, or raises Unauthorized."""

    def __init__(self, sessions, bootstrap_token=None, cache_seconds=30.0):
        self.sessions = sessions
        self.bootstrap_token = bootstrap_token
        self.cache_seconds = cache_seconds
        self._cache = {}
        self._lock = threading.Lock()

    def identify(self, header):
        if not header:
            raise Unauthorized("Send an API token: 'Authorization: Bearer <token>'.", code="missing_token")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("Use the Bearer scheme: 'Authorization: Bearer <token>'.", code="invalid_token")
        if self.bootstrap_token and hmac.compare_digest(token.encode(), self.bootstrap_token.encode()):
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
        return identity

    def _load(self, digest):
        with self.sessions() as session:
            record = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest,
                                                           ApiToken.revoked_at.is_(None)))
            if record is None:
                return None
            return Identity(actor=f"token:{record.id}", role=record.role, email=record.email,
                            teams=tuple(record.teams or ()))
