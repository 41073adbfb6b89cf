"""People's accounts: create, reset, sign in (argon2id, throttled), and the identity a person acts as.

A signed-in person acts through the same :class:`~helpdesk_gateway.auth.Identity` (and so the same viewer
the services check) as an API token:

- ``admin`` → viewer role admin;
- ``supervisor`` → viewer role admin: the services know no supervisor, and a supervisor's work (watching
  every queue, reassigning across teams) needs an admin's view; admin-only pages of later sittings check
  the account role itself;
- ``agent`` → viewer role agent, limited to the teams of the routing agent with the same email (an agent
  of no team sees everything, as a token without teams does).

The link is made from the account's side: when an agent account is created (or first signs in while
unlinked) the gateway asks routing (``list_agents``) for the agent with that email.
"""
import datetime
import secrets

import pytz
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select

from helpdesk_common.database import utcnow
from helpdesk_common.errors import HelpdeskError
from helpdesk_common.events import new_event
from helpdesk_common.outbox import stage

from .auth import Identity
from .models import Account, Outbox, SignInThrottle

ACCOUNT_ROLES = ("admin", "supervisor", "agent")
VIEWER_ROLES = {"admin": "admin", "supervisor": "admin", "agent": "agent"}
MIN_PASSWORD = 10

# argon2id with argon2-cffi's defaults (RFC 9106's low-memory profile: 64 MiB, 3 passes).
_hasher = PasswordHasher()

# Throttling: a few free tries, then a growing wait, then a lock. Counted per email, known or not.
FREE_FAILURES = 3
LOCK_AFTER = 10
LOCK_SECONDS = 15 * 60


class SignInRefused(HelpdeskError):
    status = 401
    default_code = "sign_in_failed"


class SignInThrottled(HelpdeskError):
    status = 429
    default_code = "sign_in_throttled"

    def __init__(self, message, seconds, code):
        super().__init__(message, code=code)
        self.seconds = seconds


def normal_email(email):
    return (email or "").strip().lower()


def hash_password(password):
    return _hasher.hash(password)


def check_password_rules(password):
    if len(password or "") < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")


def create_account(sessions, email, role, password, name=None, agent_id=None, language=None, time_zone=None):
    """Store a new account; ``ValueError`` for a bad role, password, time zone or a taken email."""
    email = normal_email(email)
    if role not in ACCOUNT_ROLES:
        raise ValueError(f"role must be one of {', '.join(ACCOUNT_ROLES)}")
    if "@" not in email:
        raise ValueError("an email address is needed")
    check_password_rules(password)
    if time_zone and time_zone not in pytz.all_timezones_set:
        raise ValueError(f"unknown time zone {time_zone}; use a name such as Europe/Stockholm")
    with sessions.begin() as session:
        if session.scalar(select(Account).where(Account.email == email)) is not None:
            raise ValueError(f"there is already an account for {email}")
        account = Account(email=email, role=role, name=name, agent_id=agent_id, language=language,
                          time_zone=time_zone, password_hash=hash_password(password))
        session.add(account)
        session.flush()
        announce(session, account)
        return account.id


def account_event(account, now=None):
    """``account_changed`` for ``account`` as it is now: how the other services learn of people's accounts
    (analytics mails its weekly summary to the supervisors and admins), never by reading this database."""
    return new_event("account_changed", {"account": {
        "id": account.id, "email": account.email, "name": account.name, "role": account.role,
        "language": account.language, "disabled": account.disabled_at is not None,
        "changed_at": (now or utcnow()).isoformat()}})


def announce(session, account):
    """Stage ``account_changed`` in the caller's transaction (the outbox: sent once it commits)."""
    stage(session, Outbox, account_event(account))


def reset_password(sessions, email, password):
    """A new password, and the lock lifted; ``ValueError`` when there is no such account."""
    email = normal_email(email)
    check_password_rules(password)
    with sessions.begin() as session:
        account = session.scalar(select(Account).where(Account.email == email))
        if account is None:
            raise ValueError(f"there is no account for {email}")
        account.password_hash = hash_password(password)
        session.query(SignInThrottle).filter_by(email=email).delete()
        return account.id


def generate_password():
    return secrets.token_urlsafe(12)


def find_agent_id(agents, email):
    """The id of the routing agent with ``email`` in ``agents`` (routing's ``list_agents``), or None."""
    email = normal_email(email)
    return next((agent["id"] for agent in agents if normal_email(agent.get("email")) == email), None)


def sign_in(sessions, email, password, now=None):
    """The account that ``email`` and ``password`` open, or SignInRefused / SignInThrottled.

    The throttle is consulted before the password is checked, so a locked account answers the same
    whether the guess is right or wrong."""
    email, now = normal_email(email), now or utcnow()
    with sessions.begin() as session:
        throttle = session.get(SignInThrottle, email)
        if throttle and throttle.blocked_until and throttle.blocked_until > now:
            raise _throttled(throttle, now)
        account = session.scalar(select(Account).where(Account.email == email, Account.disabled_at.is_(None)))
        if account is not None and _verify(account, password):
            if throttle is not None:
                session.delete(throttle)
            return account
        if throttle is None:
            throttle = SignInThrottle(email=email, failures=0)
            session.add(throttle)
        throttle.failures += 1
        if throttle.failures >= LOCK_AFTER:
            throttle.blocked_until = now + datetime.timedelta(seconds=LOCK_SECONDS)
        elif throttle.failures > FREE_FAILURES:
            throttle.blocked_until = now + datetime.timedelta(seconds=2 ** (throttle.failures - FREE_FAILURES))
    raise SignInRefused("The email or password is not right.")


def _verify(account, password):
    try:
        _hasher.verify(account.password_hash, password or "")
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    if _hasher.check_needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)  # stronger parameters since; saved with the sign-in
    return True


def _throttled(throttle, now):
    seconds = max(1, int((throttle.blocked_until - now).total_seconds() + 0.999))
    if throttle.failures >= LOCK_AFTER:
        return SignInThrottled("Too many failed sign-ins: this account is locked for a while.", seconds,
                               code="account_locked")
    return SignInThrottled("Too many failed sign-ins: wait a moment before the next try.", seconds,
                           code="sign_in_throttled")


def identity_of(account, teams):
    """What a signed-in person acts as. Actors name the routing agent when linked ("agent-7", as tickets
    name assignees), so "mine" and the history speak of the same person."""
    actor = f"agent-{account.agent_id}" if account.agent_id else f"account-{account.id}"
    role = VIEWER_ROLES[account.role]
    return Identity(actor=actor, role=role, email=account.email,
                    teams=tuple(teams) if role == "agent" else ())


def set_preferences(sessions, account_id, language, time_zone):
    """The person's language (None: the browser's) and time zone (None: UTC)."""
    with sessions.begin() as session:
        account = session.get(Account, account_id)
        account.language, account.time_zone = language, time_zone
        announce(session, account)


def display_names(sessions):
    """Names of accounts by their actor id ("account-3"), for accounts without a routing agent."""
    with sessions() as session:
        return {f"account-{a.id}": a.name or a.email
                for a in session.execute(select(Account.id, Account.name, Account.email))}


def invite_account(sessions, email, role, name=None, language=None, agent_id=None):
    """A new account whose password nobody knows (a random one, hashed and forgotten): the person sets
    their own through the invitation link. Returns the account."""
    account_id = create_account(sessions, email, role, secrets.token_urlsafe(32), name=name, language=language,
                                agent_id=agent_id)
    with sessions() as session:
        return session.get(Account, account_id)


def find_account(sessions, email=None, account_id=None):
    """The enabled account with ``email`` (or ``account_id``), or None."""
    with sessions() as session:
        if account_id is not None:
            account = session.get(Account, account_id)
        else:
            account = session.scalar(select(Account).where(Account.email == normal_email(email)))
        return account if account is not None and account.disabled_at is None else None


def set_password(sessions, account_id, password):
    """Set the password of account ``account_id`` (a link's or an admin's doing) and lift any lock."""
    check_password_rules(password)
    with sessions.begin() as session:
        account = session.get(Account, account_id)
        account.password_hash = hash_password(password)
        session.query(SignInThrottle).filter_by(email=account.email).delete()


def list_accounts(sessions):
    with sessions() as session:
        return list(session.scalars(select(Account).order_by(Account.email)))
