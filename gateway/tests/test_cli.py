"""cli.py (the ``helpdesk`` command) through click's CliRunner, on a SQLite file in tmp_path."""
import hashlib
import json
from datetime import timedelta

import pytest
from click.testing import CliRunner
from openapi_spec_validator import validate as validate_openapi
from sqlalchemy import inspect, select

from helpdesk_common.adapters.database import engine_for
from helpdesk_common.database import utcnow
from helpdesk_gateway.auth import Authenticator, Unauthorized
from helpdesk_gateway.cli import main
from helpdesk_gateway.models import ApiToken


@pytest.fixture
def fresh_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    yield url
    engine_for(url).dispose()


@pytest.fixture
def helpdesk(db_url):
    """Run ``helpdesk --db <the test database> ...``."""

    def run(*args, expect=0):
        result = CliRunner().invoke(main, ["--db", db_url, *args])
        assert result.exit_code == expect, (result.output, result.exception)
        return result

    return run


def records(sessions):
    with sessions() as session:
        return session.scalars(select(ApiToken).order_by(ApiToken.id)).all()


def test_migrate_creates_the_tables_and_is_repeatable(fresh_url):
    for _ in range(2):
        result = CliRunner().invoke(main, ["--db", fresh_url, "migrate"])
        assert result.exit_code == 0, result.output
        assert result.stdout == "gateway database is up to date\n"
    inspector = inspect(engine_for(fresh_url))
    assert {"api_tokens", "alembic_version"} <= set(inspector.get_table_names())
    assert {c["name"] for c in inspector.get_columns("api_tokens")} == \
        {"id", "name", "token_hash", "role", "email", "teams", "created_at", "revoked_at", "scopes", "expires_at",
         "bootstrap"}


def test_the_database_url_comes_from_the_environment_without_db(fresh_url):
    result = CliRunner(env={"HELPDESK_GATEWAY_DB_URL": fresh_url}).invoke(main, ["migrate"])
    assert result.exit_code == 0, result.output
    assert "api_tokens" in inspect(engine_for(fresh_url)).get_table_names()


def test_token_create_prints_the_secret_once_on_stdout_and_stores_its_hash(helpdesk, sessions):
    result = helpdesk("token", "create", "--name", "nw", "--role", "agent", "--email", "a@corp.example",
                      "--team", "network", "--team", "vpn")
    secret = result.stdout.strip()
    assert result.stdout == secret + "\n" and secret.startswith("hd_")  # stdout is the secret alone: scriptable
    assert "token 1 (agent) created" in result.stderr and secret not in result.stderr
    [record] = records(sessions)
    assert (record.id, record.name, record.role, record.email, record.teams) == \
        (1, "nw", "agent", "a@corp.example", ["network", "vpn"])
    assert record.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    identity = Authenticator(sessions).identify(f"Bearer {secret}")
    assert (identity.actor, identity.role, identity.teams) == ("token:1", "agent", ("network", "vpn"))


@pytest.mark.parametrize("args, problem", [
    (["--name", "eva", "--role", "customer"], "a customer token needs the customer's email"),
    (["--name", "x", "--role", "root"], "'root' is not one of 'admin', 'agent', 'customer'"),
    (["--role", "agent"], "Missing option '--name'"),
])
def test_token_create_with_bad_options_is_a_usage_error_and_stores_nothing(helpdesk, sessions, args, problem):
    result = helpdesk("token", "create", *args, expect=2)
    assert problem in result.output
    assert "hd_" not in result.stdout
    assert records(sessions) == []


def test_token_list_shows_every_token_but_never_a_secret_or_its_hash(helpdesk, sessions):
    secrets = [helpdesk("token", "create", "--name", "crm-sync", "--role", "agent").stdout.strip(),
               helpdesk("token", "create", "--name", "eva", "--role", "customer",
                        "--email", "eva@example.se").stdout.strip(),
               helpdesk("token", "create", "--name", "nw", "--role", "agent", "--team", "network",
                        "--team", "vpn").stdout.strip()]
    helpdesk("token", "revoke", "2")
    listing = helpdesk("token", "list").output
    expires = (utcnow() + timedelta(days=90)).date().isoformat()
    assert listing.splitlines() == [f"1\tcrm-sync\tagent\t-\t-\tread,write\t{expires}\tactive",
                                    f"2\teva\tcustomer\teva@example.se\t-\tread,write\t{expires}\trevoked",
                                    f"3\tnw\tagent\t-\tnetwork,vpn\tread,write\t{expires}\tactive"]
    for secret in secrets:
        assert secret not in listing
        assert hashlib.sha256(secret.encode()).hexdigest() not in listing


def test_token_revoke_stops_the_token_and_keeps_the_first_revocation_time(helpdesk, sessions):
    secret = helpdesk("token", "create", "--name", "gone", "--role", "admin").stdout.strip()
    assert Authenticator(sessions, cache_seconds=0).identify(f"Bearer {secret}").role == "admin"
    assert helpdesk("token", "revoke", "1").stdout == "token 1 revoked\n"
    [record] = records(sessions)
    first = record.revoked_at
    assert first is not None
    with pytest.raises(Unauthorized) as caught:
        Authenticator(sessions, cache_seconds=0).identify(f"Bearer {secret}")
    assert caught.value.code == "invalid_token"
    helpdesk("token", "revoke", "1")
    assert records(sessions)[0].revoked_at == first


def test_revoking_an_unknown_token_is_a_usage_error_and_changes_nothing(helpdesk, sessions):
    helpdesk("token", "create", "--name", "keep", "--role", "agent")
    result = helpdesk("token", "revoke", "99", expect=2)
    assert "no token 99" in result.output
    assert "revoked" not in result.stdout
    assert records(sessions)[0].revoked_at is None
    assert "'abc' is not a valid integer" in helpdesk("token", "revoke", "abc", expect=2).output


def test_openapi_writes_a_valid_document_to_a_file_and_the_same_to_stdout(tmp_path):
    target = tmp_path / "docs" / "openapi.json"
    target.parent.mkdir()
    result = CliRunner().invoke(main, ["openapi", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    document = json.loads(target.read_text())
    validate_openapi(document)  # raises on any violation of the OpenAPI 3.1 schema
    assert document["openapi"] == "3.1.0"
    assert {"/api/v1/tickets", "/api/v1/tickets/{number}", "/health"} <= set(document["paths"])
    assert set(document["paths"]["/api/v1/tickets"]) == {"get", "post"}
    printed = CliRunner().invoke(main, ["openapi"])
    assert printed.exit_code == 0 and json.loads(printed.stdout) == document


def test_account_create_and_reset(helpdesk, sessions, monkeypatch, dead_amqp_uri):
    from helpdesk_gateway import accounts

    made = helpdesk("account", "create", "--email", "Root@Example.org", "--role", "admin").output.splitlines()[0]
    assert accounts.sign_in(sessions, "root@example.org", made).role == "admin"  # the printed password works
    helpdesk("account", "create", "--email", "root@example.org", "--role", "agent", "--password", "x" * 12, expect=2)
    helpdesk("account", "create", "--email", "eva@example.org", "--role", "admin", "--password", "short", expect=2)
    helpdesk("account", "create", "--email", "eva@example.org", "--role", "customer", expect=2)
    # An agent account while routing cannot be asked: made, and linked at the first sign-in.
    monkeypatch.setenv("HELPDESK_AMQP_URI", dead_amqp_uri)
    helpdesk("account", "create", "--email", "ada@example.org", "--role", "agent", "--password", "a" * 12)
    helpdesk("account", "reset", "--email", "ada@example.org", "--password", "b" * 12)
    assert accounts.sign_in(sessions, "ada@example.org", "b" * 12).agent_id is None
    helpdesk("account", "reset", "--email", "nobody@example.org", expect=2)
