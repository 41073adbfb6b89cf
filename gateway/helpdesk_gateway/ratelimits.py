"""Rate limits on the REST API (Flask-Limiter), counted in a store every gateway
worker and replica shares (Redis: ``HELPDESK_RATE_LIMIT_STORAGE=redis://...``; ``memory://``, per process,
for ``make run``).

Three budgets, each a Flask-Limiter string such as ``600/minute;20/second`` (settings in ``Settings``):

- **per token** (a request with an ``Authorization`` header, counted by the header's SHA-256, so neither the
  token nor its hash is a key anybody could read back), shared by every route;
- **per address** for visitors without a token (the portal's knowledge base, chats, the web form), shared by
  every route; and a tighter one per address on the routes where each call writes something (starting a
  chat, submitting the web form, a suggestion: each makes a row and an event);
- **per address** for everything, tokens or not, high enough for a NAT full of integrators: a client that
  invents a new token for every request still meets a limit.

``/health`` and ``/metrics`` are not limited: probes poll them, and they answer from a cache or counters in
memory. The check runs before authentication, so a flood of made-up tokens costs no database lookups. The answer
is 429 ``rate_limited`` with ``Retry-After`` (seconds). Should the store be unreachable, requests are
served (counted in memory meanwhile) rather than refused: a limit must not become the outage.

Pages of the workspace are not limited here (sign-in has its own per-email throttle), nor static files.
"""
import hashlib
import math
import threading
import time
from collections import deque

from flask import request
from flask_limiter import ApplicationLimit, Limit, Limiter
from limits.storage import MemoryStorage

from .api import operation_for

COSTLY_PUBLIC = ("chat.start_chat", "intake.submit_web_form", "kb.suggest", "kb.suggestion_opened",
                 "kb.suggestion_resolved", "accounts.create_password_reset", "ui_password.forgot",
                 "portal.submit_request", "portal.embed_submit")
"""Public routes where every anonymous call stores or sends something (a chat, a ticket, a suggestion row and
its event, a password-reset mail); the portal's request forms too (per address, beside intake's limit per email
address). ``ui_password.forgot`` is a page limited so: it sends the same mail as ``POST /password-resets`` and
shares its budget's size."""


def client_address():
    """The caller's address. Behind a reverse proxy, run the gateway with ``HELPDESK_PROXY_HOPS`` set so that
    Werkzeug's ProxyFix makes ``remote_addr`` the client's (``app.py``); otherwise the proxy's is counted."""
    return request.remote_addr or "unknown"


def _token_key():
    return "token:" + hashlib.sha256(request.headers.get("Authorization", "").encode()).hexdigest()[:40]


def _address_key():
    return "address:" + client_address()


UNLIMITED = ("observability.health", "observability.metrics")
"""Probes poll these every few seconds from one address; both answer from a cache (or in-process counters)."""


def _limited():
    """Declared operations only: pages and static files are not API calls; probes are not limited."""
    return (request.url_rule is not None and operation_for(request.endpoint).endpoint != ""
            and request.endpoint not in UNLIMITED)


def _with_token():
    return "Authorization" in request.headers


class MovingWindowMemory(MemoryStorage):
    """The ``memory://`` store (one per process) with a moving window that costs O(1) a hit.

    limits' own ``MemoryStorage`` starts a ``threading.Timer`` thread to expire entries whenever none is
    alive (every 10 ms under load: most of a request's limit check, which was a third of the gateway's CPU
    for a new ticket), and inserts each hit at the front of a list as long as the window's count. Here each
    key keeps its hits' times oldest first in a deque, trimmed as it is read, and idle keys are swept by the
    request that finds the last sweep a second old. The answers are the same: a hit is refused when the
    window already holds ``limit - amount + 1`` hits or more.
    """

    STORAGE_SCHEME = ["memory"]  # replaces limits' own for ``memory://`` (the fixed-window methods are its own)
    SWEEP_SECONDS = 1.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._hits = {}  # key -> (expiry seconds, deque of hit times, oldest first)
        self._hits_lock = threading.Lock()
        self._next_sweep = 0.0

    def _window(self, key, expiry, now):
        """The key's deque with the hits older than the window dropped (the lock is held)."""
        entry = self._hits.get(key)
        if entry is None:
            entry = self._hits[key] = (expiry, deque())
        hits, start = entry[1], now - expiry
        while hits and hits[0] < start:
            hits.popleft()
        if now >= self._next_sweep:
            self._next_sweep = now + self.SWEEP_SECONDS
            for other, (other_expiry, other_hits) in list(self._hits.items()):
                if not other_hits or other_hits[-1] < now - other_expiry:
                    del self._hits[other]
            self._hits[key] = entry
        return hits

    def acquire_entry(self, key, limit, expiry, amount=1):
        if amount > limit:
            return False
        now = time.time()
        with self._hits_lock:
            hits = self._window(key, expiry, now)
            if len(hits) + amount > limit:
                return False
            hits.extend([now] * amount)
            return True

    def get_moving_window(self, key, limit, expiry):
        now = time.time()
        with self._hits_lock:
            hits = self._window(key, expiry, now)
            return (hits[0], len(hits)) if hits else (now, 0)

    def clear(self, key):
        with self._hits_lock:
            self._hits.pop(key, None)
        super().clear(key)

    def reset(self):
        with self._hits_lock:
            count = len(self._hits)
            self._hits.clear()
        return (super().reset() or 0) + count


def create_limiter(app, settings):
    """Install the limits on ``app``. Call before the authentication hook is registered, so it runs first."""
    limiter = Limiter(
        key_func=_address_key,
        storage_uri=settings.rate_limit_storage,
        strategy="moving-window",
        key_prefix=settings.rate_limit_prefix,
        headers_enabled=False,  # Retry-After is set on the 429 only (errors.py), not on every answer
        swallow_errors=True,
        in_memory_fallback_enabled=True,
        application_limits=[
            ApplicationLimit(settings.rate_limit_token, key_function=_token_key, scope="token",
                             exempt_when=lambda: not (_limited() and _with_token())),
            ApplicationLimit(settings.rate_limit_anonymous, key_function=_address_key, scope="anonymous",
                             exempt_when=lambda: not _limited() or _with_token()),
            ApplicationLimit(settings.rate_limit_address, key_function=_address_key, scope="address",
                             exempt_when=lambda: not _limited()),
        ],
        default_limits=[
            Limit(settings.rate_limit_costly, key_function=_address_key, scope="costly",
                  exempt_when=lambda: _with_token() or request.endpoint not in COSTLY_PUBLIC),
        ],
    )
    limiter.init_app(app)
    app.extensions["helpdesk.limiter"] = limiter
    return limiter


def retry_after(app):
    """Whole seconds until the limit this request broke lets a request through again (at least 1)."""
    limiter = app.extensions.get("helpdesk.limiter")
    try:
        reset_at = limiter.current_limit.reset_at
    except Exception:  # no limit recorded, or the store went away meanwhile: a minute is a safe answer
        return 60
    return max(1, math.ceil(reset_at - time.time()))
