"""Who is signed in: browser sessions kept in the gateway's database, behind an HttpOnly cookie.

Server-side sessions (not a signed cookie holding the identity) so that sign-out and an account's
disabling end the session at once. A new session (a new random cookie) is made at every sign-in, so a
cookie planted before sign-in is worth nothing after it. The routing agent's teams are copied into the
session and checked again every ``TEAMS_FRESH`` so a team change reaches the person within a minute.
"""
import datetime
import hashlib
import logging
import secrets

from flask import current_app, g, request
from sqlalchemy import select

from helpdesk_common.database import utcnow
from helpdesk_common.errors import HelpdeskError

from .. import accounts
from ..api.routing import read_agents
from ..auth import Identity
from ..models import Account, BrowserSession
from .security import secure_cookies

log = logging.getLogger(__name__)

SESSION_COOKIE = "hd_session"
IDLE = datetime.timedelta(hours=12)
TEAMS_FRESH = datetime.timedelta(seconds=60)
SYSTEM = Identity(actor="workspace", role="admin")  # only to look up agents, never for a person's action


class AgentNotLinked(HelpdeskError):
    status = 403
    default_code = "agent_not_linked"


def _db():
    return current_app.extensions["helpdesk.db"]


def _hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def load():
    """Set ``g.account`` and ``g.identity`` from the session cookie (both None when not signed in)."""
    g.account = None
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 100:
        return
    now = utcnow()
    with _db().begin() as session:
        record = session.scalar(select(BrowserSession).where(BrowserSession.token_hash == _hash(token)))
        if record is None or record.seen_at < now - IDLE:
            return
        account = session.get(Account, record.account_id)
        if account is None or account.disabled_at is not None:
            session.delete(record)
            return
        if account.role == "agent" and record.teams_checked_at < now - TEAMS_FRESH:
            record.teams = _agent_teams(account, record.teams)
            record.teams_checked_at = now
        if record.seen_at < now - datetime.timedelta(minutes=1):
            record.seen_at = now  # at most one write a minute per person
        session.expunge(account)
        g.account, g.session_cookie = account, token
        g.identity = accounts.identity_of(account, record.teams or ())


def _agent_teams(account, known):
    try:
        agents = _as_system(read_agents)
    except HelpdeskError:
        log.warning("routing did not answer; keeping %s's teams as they were", account.email)
        return known
    return next((a["teams"] for a in agents if a["id"] == account.agent_id), known)


def _as_system(function, *args):
    saved = g.get("identity")
    g.identity = SYSTEM
    try:
        return function(*args)
    finally:
        g.identity = saved


def link_agent(account):
    """The routing agent id and teams of an agent account (looked up by email), or AgentNotLinked."""
    agents = _as_system(read_agents)
    agent_id = account.agent_id or accounts.find_agent_id(agents, account.email)
    agent = next((a for a in agents if a["id"] == agent_id), None)
    if agent is None:
        raise AgentNotLinked("Your account is not linked to an agent yet: ask an administrator to create the "
                             "agent with your email address.")
    return agent["id"], agent["teams"]


def start(account):
    """A new session for ``account`` (the old cookie, if any, is ended). Returns the cookie value."""
    teams = []
    agent_id = account.agent_id
    if account.role == "agent":
        agent_id, teams = link_agent(account)
    token = secrets.token_urlsafe(32)
    with _db().begin() as session:
        old = request.cookies.get(SESSION_COOKIE)
        if old:
            session.query(BrowserSession).filter_by(token_hash=_hash(old)).delete()
        if agent_id != account.agent_id:
            session.get(Account, account.id).agent_id = agent_id
            account.agent_id = agent_id
        session.add(BrowserSession(token_hash=_hash(token), account_id=account.id, teams=list(teams)))
    g.account, g.session_cookie = account, token
    g.identity = accounts.identity_of(account, teams)
    return token


def end():
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with _db().begin() as session:
            session.query(BrowserSession).filter_by(token_hash=_hash(token)).delete()
    g.account, g.session_cookie = None, None


def set_cookie(response, token):
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Lax", secure=secure_cookies(), path="/")


def clear_cookie(response):
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Lax", secure=secure_cookies())
