"""auth.py: tokens stored hashed, create_token's checks, and the Authenticator (scheme, bootstrap, cache)."""
import hashlib
from datetime import timedelta
import time

import pytest
from sqlalchemy import select, text

from helpdesk_common.database import utcnow
from helpdesk_gateway import auth
from helpdesk_gateway.auth import Authenticator, Identity, Unauthorized, create_token
from helpdesk_gateway.models import ApiToken


def revoke(sessions, token_id):
    auth.revoke_token(sessions, token_id)


def refused(authenticator, header):
    with pytest.raises(Unauthorized) as caught:
        authenticator.identify(header)
    assert caught.value.status == 401
    return caught.value.code


class Clock:
    """A time.monotonic the test moves by hand."""

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(time, "monotonic", clock)
    assert auth.time.monotonic is clock  # auth.py reads the clock through the time module
    return clock


def test_a_token_is_stored_as_its_sha256_and_the_secret_nowhere(sessions):
    token_id, secret = create_token(sessions, "crm-sync", "agent", email="crm@example.com", teams=("network",))
    assert secret.startswith("hd_") and len(secret) > 40
    with sessions() as session:
        raw_rows = session.execute(text("SELECT * FROM api_tokens")).all()
        record = session.get(ApiToken, token_id)
    assert len(raw_rows) == 1
    assert secret not in repr(tuple(raw_rows[0]))
    assert record.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert (record.name, record.role, record.email, record.teams, record.revoked_at) == \
        ("crm-sync", "agent", "crm@example.com", ["network"], None)
    _, other = create_token(sessions, "crm-sync", "agent")
    assert other != secret


@pytest.mark.parametrize("role, email, problem", [
    ("superuser", None, "role must be one of admin, agent, customer"),
    ("Admin", None, "role must be one of"),
    ("customer", None, "needs the customer's email"),
    ("customer", "", "needs the customer's email"),
])
def test_create_token_refuses_a_bad_role_or_a_customer_without_email(sessions, role, email, problem):
    with pytest.raises(ValueError, match=problem):
        create_token(sessions, "bad", role, email=email)
    with sessions() as session:
        assert session.scalars(select(ApiToken)).all() == []


def test_a_stored_token_identifies_as_its_record(sessions):
    customer_id, customer = create_token(sessions, "eva", "customer", email="eva@example.se")
    agent_id, agent = create_token(sessions, "nw", "agent", teams=["network", "vpn"])
    authenticator = Authenticator(sessions, bootstrap_token="boot")
    eva = authenticator.identify(f"Bearer {customer}")
    assert eva == Identity(actor=f"token:{customer_id}", role="customer", email="eva@example.se", teams=(),
                           scopes=("read", "write"), expires_at=eva.expires_at)
    assert timedelta(days=89) < eva.expires_at - utcnow() <= timedelta(days=90)  # 90 days unless made otherwise
    identity = authenticator.identify(f"Bearer {agent}")
    assert identity == Identity(actor=f"token:{agent_id}", role="agent", email=None, teams=("network", "vpn"),
                                scopes=("read", "write"), expires_at=identity.expires_at)
    assert identity.viewer("req-1") == {"actor": f"token:{agent_id}", "role": "agent", "email": None,
                                        "teams": ["network", "vpn"], "correlation_id": "req-1"}


def test_the_bootstrap_token_is_an_admin_only_when_configured(sessions):
    assert Authenticator(sessions, bootstrap_token="s3cret").identify("Bearer s3cret") == \
        Identity(actor="bootstrap", role="admin")
    assert refused(Authenticator(sessions, bootstrap_token="s3cret"), "Bearer s3cre") == "invalid_token"
    assert refused(Authenticator(sessions, bootstrap_token="s3cret"), "Bearer s3cret2") == "invalid_token"
    for unset in (None, ""):
        assert refused(Authenticator(sessions, bootstrap_token=unset), "Bearer s3cret") == "invalid_token"


@pytest.mark.parametrize("header", [None, ""])
def test_no_authorization_header_is_missing_token(sessions, header):
    assert refused(Authenticator(sessions, bootstrap_token="t"), header) == "missing_token"


def test_unknown_and_revoked_tokens_are_invalid_token(sessions):
    token_id, secret = create_token(sessions, "old", "agent")
    authenticator = Authenticator(sessions, cache_seconds=0)
    assert authenticator.identify(f"Bearer {secret}").role == "agent"
    assert refused(authenticator, "Bearer hd_never-issued") == "invalid_token"
    assert refused(authenticator, f"Bearer {auth.hash_token(secret)}") == "invalid_token"  # the hash is no key
    revoke(sessions, token_id)
    assert refused(authenticator, f"Bearer {secret}") == "invalid_token"


@pytest.mark.parametrize("header", ["Bearer t", "bearer t", "BEARER t", "Bearer   t  ", "Bearer t\t"])
def test_the_bearer_scheme_is_case_insensitive_and_spaces_around_the_token_do_not_matter(sessions, header):
    assert Authenticator(sessions, bootstrap_token="t").identify(header).role == "admin"


@pytest.mark.parametrize("header", ["t", "Basic t", "Token t", "Bearer", "Bearer ", "Bearer    ", "Bearert",
                                    "Bearer\tt", " Bearer t"])
def test_anything_but_a_bearer_token_is_invalid_token(sessions, header):
    assert refused(Authenticator(sessions, bootstrap_token="t"), header) == "invalid_token"


def test_a_revoked_token_stops_at_once_even_where_it_is_cached(sessions, clock):
    token_id, secret = create_token(sessions, "soon-gone", "agent")
    workers = [Authenticator(sessions, cache_seconds=30) for _ in range(2)]  # two gateway workers
    header = f"Bearer {secret}"
    for worker in workers:
        assert worker.identify(header).actor == f"token:{token_id}"  # cached until 1030
    revoke(sessions, token_id)  # by a third process (the operator's command, or another worker)
    for worker in workers:
        assert refused(worker, header) == "invalid_token"  # the revocation counter moved: cache dropped
    clock.now = 1031.0
    assert refused(workers[0], header) == "invalid_token"  # and it stays refused


def test_a_revocation_bypassing_the_counter_would_be_served_from_the_cache(sessions, clock):
    """What the counter is for: a revoked_at written alone (no counter) is seen only at cache expiry."""
    token_id, secret = create_token(sessions, "raw", "agent")
    authenticator = Authenticator(sessions, cache_seconds=30)
    authenticator.identify(f"Bearer {secret}")
    with sessions.begin() as session:
        session.get(ApiToken, token_id).revoked_at = utcnow()
    assert authenticator.identify(f"Bearer {secret}").actor == f"token:{token_id}"


def test_an_expired_token_is_refused_and_a_token_without_expiry_is_not(sessions):
    _, short = create_token(sessions, "short", "agent", lifetime=timedelta(seconds=1))
    _, forever = create_token(sessions, "forever", "agent", lifetime=None)
    authenticator = Authenticator(sessions, cache_seconds=30)
    assert authenticator.identify(f"Bearer {short}").role == "agent"
    with sessions.begin() as session:
        session.scalar(select(ApiToken).where(ApiToken.name == "short")).expires_at = utcnow() - timedelta(seconds=1)
        auth._bump(session, auth.TOKEN_VERSION)
    assert refused(authenticator, f"Bearer {short}") == "token_expired"
    assert authenticator.identify(f"Bearer {forever}").expires_at is None


def test_scopes_are_a_subset_of_the_roles(sessions):
    assert create_token(sessions, "ro", "agent", scopes=["read"])
    with pytest.raises(ValueError, match="only the scopes read, write"):
        create_token(sessions, "up", "agent", scopes=["read", "admin"])
    with pytest.raises(ValueError, match="positive"):
        create_token(sessions, "neg", "agent", lifetime=timedelta(0))


def test_a_rotated_bootstrap_token_replaces_the_environments_and_the_previous_one(sessions):
    authenticator = Authenticator(sessions, bootstrap_token="from-env")
    assert authenticator.identify("Bearer from-env").actor == "bootstrap"
    _, first = auth.rotate_bootstrap(sessions)
    assert refused(authenticator, "Bearer from-env") == "invalid_token"
    assert authenticator.identify(f"Bearer {first}").scopes == ("read", "write", "admin")
    _, second = auth.rotate_bootstrap(sessions)
    assert refused(authenticator, f"Bearer {first}") == "invalid_token"
    assert authenticator.identify(f"Bearer {second}").role == "admin"


def test_a_cached_token_costs_no_database_read_until_it_expires(sessions, clock, monkeypatch):
    _, secret = create_token(sessions, "hot", "agent")
    authenticator = Authenticator(sessions, cache_seconds=5)
    loads = []
    original = authenticator._load
    monkeypatch.setattr(authenticator, "_load", lambda digest: loads.append(digest) or original(digest))
    for step in range(10):
        clock.now = 1000 + step * 0.4
        authenticator.identify(f"Bearer {secret}")
    assert len(loads) == 1
    clock.now = 1005.1
    authenticator.identify(f"Bearer {secret}")
    assert len(loads) == 2


def test_unknown_tokens_do_not_fill_the_cache(sessions, clock):
    # Every header is attacker-controlled: remembering each unknown token would let anyone grow the
    # gateway's memory without bound, 30 seconds at a time.
    authenticator = Authenticator(sessions, cache_seconds=30)
    for number in range(200):
        refused(authenticator, f"Bearer hd_guess-{number}")
    assert len(authenticator._cache) == 0
    token_id, secret = create_token(sessions, "real", "agent")
    authenticator.identify(f"Bearer {secret}")
    assert len(authenticator._cache) == 1
    revoke(sessions, token_id)
    clock.now += 31
    refused(authenticator, f"Bearer {secret}")
    assert len(authenticator._cache) == 0  # the expired entry of a revoked token is dropped too
