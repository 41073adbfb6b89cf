"""Customers' sign-in to the portal: a single-use link mailed to the address, then a session cookie.

No password and no account: whoever can read the mail of an address is that address's customer, and the
tickets service shows a customer every ticket of the contact known by that address (any channel). A link
lives ``LINK_LIFETIME``, works once (``used_at`` is set in the transaction that starts the session, so two
clicks at once make one session), and only its SHA-256 is stored. At most ``LINKS_PER_HOUR`` links are
made per address an hour, so the form cannot be used to flood someone's inbox. Sessions end after
``IDLE`` without use, and at sign-out. Plain functions of a session factory with an explicit ``now``.
"""
import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import func, select, update

from ..models import CustomerLink, CustomerSession

LINK_LIFETIME = timedelta(minutes=20)
LINKS_PER_HOUR = 5
IDLE = timedelta(hours=12)


class LinkRefused(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code  # link_unknown | link_used | link_expired


def _hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def make_link(sessions, email, now):
    """A new link token for ``email``, or None when the address had its ``LINKS_PER_HOUR`` already."""
    email = email.strip().lower()
    with sessions.begin() as session:
        recent = session.scalar(select(func.count()).select_from(CustomerLink).where(
            CustomerLink.email == email, CustomerLink.created_at > now - timedelta(hours=1)))
        if recent >= LINKS_PER_HOUR:
            return None
        token = secrets.token_urlsafe(32)
        session.add(CustomerLink(token_hash=_hash(token), email=email, created_at=now,
                                 expires_at=now + LINK_LIFETIME))
    return token


def check_link(sessions, token, now):
    """The address a link is for, or LinkRefused (without using it: the page asks for a click first)."""
    with sessions() as session:
        link = session.scalar(select(CustomerLink).where(CustomerLink.token_hash == _hash(token or "")))
    return _judge(link, now).email


def _judge(link, now):
    if link is None:
        raise LinkRefused("link_unknown")
    if link.used_at is not None:
        raise LinkRefused("link_used")
    if link.expires_at <= now:
        raise LinkRefused("link_expired")
    return link


def redeem_link(sessions, token, now, old_cookie=None):
    """Use the link once and start a session: ``(email, session cookie)``, or LinkRefused."""
    with sessions.begin() as session:
        link = _judge(session.scalar(select(CustomerLink).where(CustomerLink.token_hash == _hash(token or ""))), now)
        # Conditional on still unused: of two clicks racing, one updates the row and the other finds it used.
        taken = session.execute(update(CustomerLink).where(CustomerLink.id == link.id, CustomerLink.used_at.is_(None))
                                .values(used_at=now)).rowcount
        if taken != 1:
            raise LinkRefused("link_used")
        if old_cookie:
            session.query(CustomerSession).filter_by(token_hash=_hash(old_cookie)).delete()
        cookie = secrets.token_urlsafe(32)
        session.add(CustomerSession(token_hash=_hash(cookie), email=link.email, created_at=now, seen_at=now))
    return link.email, cookie


def session_email(sessions, cookie, now):
    """The address of a live session cookie, or None."""
    if not cookie or len(cookie) > 100:
        return None
    with sessions.begin() as session:
        record = session.scalar(select(CustomerSession).where(CustomerSession.token_hash == _hash(cookie)))
        if record is None or record.seen_at < now - IDLE:
            return None
        if record.seen_at < now - timedelta(minutes=1):
            record.seen_at = now  # at most one write a minute
        return record.email


def end_session(sessions, cookie):
    if cookie:
        with sessions.begin() as session:
            session.query(CustomerSession).filter_by(token_hash=_hash(cookie)).delete()
