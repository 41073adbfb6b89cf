"""The gateway's own tables: API tokens, people's accounts and browser sessions. Only hashes of tokens,
passwords and session cookies are stored."""
from typing import Optional

from sqlalchemy import JSON, Boolean, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from helpdesk_common.database import UtcDateTime, utcnow
from helpdesk_common.outbox import OutboxMixin


class Base(DeclarativeBase):
    pass


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    email: Mapped[Optional[str]] = mapped_column(String(254))
    teams: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    revoked_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    scopes: Mapped[Optional[list]] = mapped_column(JSON)  # None (tokens made before scopes): all of the role's
    expires_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)  # None: never
    bootstrap: Mapped[bool] = mapped_column(Boolean, default=False)  # made by `helpdesk token rotate-bootstrap`


class GatewayCounter(Base):
    """Numbers every gateway worker reads on each request: ``token_version`` (raised by every revocation, so
    no worker serves a revoked token from its cache) and ``bootstrap_rotations`` (once raised, the
    ``HELPDESK_BOOTSTRAP_TOKEN`` of the environment no longer works)."""

    __tablename__ = "gateway_counters"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class AuditEntry(Base):
    """One administrative change: who, when, what (``audit.py``). Never updated or deleted by the gateway."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100), index=True)
    action: Mapped[str] = mapped_column(String(100), index=True)  # e.g. team.updated, token.revoked
    target: Mapped[Optional[str]] = mapped_column(String(200))
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    request_id: Mapped[Optional[str]] = mapped_column(String(100))


class Outbox(OutboxMixin, Base):
    """The gateway's events (``audit_recorded``), staged with the change and relayed by ``relay.py``."""


# --- people who sign in to the workspace (``helpdesk_gateway.accounts``) ---------------------------

class Account(Base):
    """A person who signs in with email and password. An agent account is linked to the routing agent
    with the same email (``agent_id``), whose teams limit what the person sees."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-cased
    name: Mapped[Optional[str]] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))  # admin, supervisor, agent
    password_hash: Mapped[str] = mapped_column(String(200))
    agent_id: Mapped[Optional[int]] = mapped_column(Integer)
    language: Mapped[Optional[str]] = mapped_column(String(10))  # None: from the browser
    time_zone: Mapped[Optional[str]] = mapped_column(String(60))  # None: UTC
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    disabled_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)


class BrowserSession(Base):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored, so a leaked
    database cannot be replayed as cookies. Sign-out deletes the row: the cookie is dead at once."""

    __tablename__ = "browser_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(Integer, index=True)
    teams: Mapped[list] = mapped_column(JSON, default=list)  # the routing agent's teams, refreshed now and then
    teams_checked_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    seen_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)


class SignInThrottle(Base):
    """Failed sign-ins per email (known or not, so the answer tells nothing about who has an account)."""

    __tablename__ = "sign_in_throttle"

    email: Mapped[str] = mapped_column(String(254), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    blocked_until: Mapped[Optional[object]] = mapped_column(UtcDateTime)


class GatewaySecret(Base):
    """Secrets every gateway process must share (the key that signs CSRF tokens), made once on first use
    when ``HELPDESK_SECRET_KEY`` is not set."""

    __tablename__ = "gateway_secrets"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class CustomerLink(Base):
    """A sign-in link mailed to a customer: single use (``used_at``), expiring; only its SHA-256 is kept."""

    __tablename__ = "customer_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254), index=True)  # stored lower-cased
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[object] = mapped_column(UtcDateTime)
    used_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)


class CustomerSession(Base):
    """A customer signed in to the portal (cookie ``hd_customer``; only its SHA-256 is kept)."""

    __tablename__ = "customer_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    seen_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
