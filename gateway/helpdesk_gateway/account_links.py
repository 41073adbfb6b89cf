"""One-time links that set a person's password: a password reset (an hour) or an invitation (a week).

Nothing is stored: a link carries the account id, its purpose and its end, signed with the gateway's
secret over those and the account's current password hash. Setting a password changes the hash (argon2id
salts every hash afresh), so a used link, and every other link made before it, no longer verifies: single
use without a table of tokens. Plain code with an explicit ``now``; the views live in ``ui/password.py``.
"""
import hashlib
import hmac
from datetime import timedelta

LIFETIMES = {"reset": timedelta(hours=1), "invite": timedelta(days=7)}


def _signature(secret, purpose, account_id, expires, password_hash):
    message = f"{purpose}|{account_id}|{expires}|{password_hash}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def make(secret, purpose, account_id, password_hash, now):
    """The token of a link for ``purpose`` ("reset" or "invite"), valid from ``now`` for its lifetime."""
    expires = int((now + LIFETIMES[purpose]).timestamp())
    signature = _signature(secret, purpose, account_id, expires, password_hash)
    return f"{purpose[0]}{account_id}.{expires}.{signature}"


def parse(token):
    """(purpose, account id, expires) of a token's readable part, or None when it is not one of ours."""
    try:
        head, expires, signature = (token or "").split(".")
        purpose = {"r": "reset", "i": "invite"}[head[:1]]
        return purpose, int(head[1:]), int(expires)
    except (ValueError, KeyError):
        return None


def check(secret, token, password_hash, now):
    """True when ``token`` is a link for the account whose hash is ``password_hash``, not yet expired."""
    parsed = parse(token)
    if parsed is None:
        return False
    purpose, account_id, expires = parsed
    if now.timestamp() > expires:
        return False
    expected = _signature(secret, purpose, account_id, expires, password_hash)
    return hmac.compare_digest(expected.encode(), token.rsplit(".", 1)[1].encode())
