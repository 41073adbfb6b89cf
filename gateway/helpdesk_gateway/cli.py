"""``helpdesk``: the operator's command for the gateway (accounts, tokens, migrations, the OpenAPI document)."""
import json
import os
from datetime import timedelta

import click
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from helpdesk_common.adapters.database import engine_for
from helpdesk_common.database import utcnow
from helpdesk_common.adapters.migrations import Migrations

from . import accounts, audit
from .auth import ROLES, SCOPES, create_token, revoke_token, rotate_bootstrap
from .models import ApiToken
from .settings import Settings

HERE = os.path.dirname(os.path.abspath(__file__))


def _sessions(url):
    return sessionmaker(engine_for(url), expire_on_commit=False)


# The gateway keeps its settings in the environment (no config.yaml): only ``upgrade`` is used.
upgrade = Migrations("gateway", HERE, "HELPDESK_GATEWAY_DB_URL").upgrade


@click.group()
@click.option("--db", "db_url", envvar="HELPDESK_GATEWAY_DB_URL", default=None,
              help="gateway database URL (default: HELPDESK_GATEWAY_DB_URL or sqlite:///var/gateway.db)")
@click.pass_context
def main(ctx, db_url):
    """Operate the helpdesk gateway."""
    ctx.obj = db_url or Settings().database_url


@main.command()
@click.pass_obj
def migrate(db_url):
    """Create or upgrade the gateway's tables."""
    upgrade(db_url)
    click.echo("gateway database is up to date")


@main.group()
def token():
    """Create, list and revoke API tokens."""


def _audit(db_url, action, target, details=None):
    """Record what the operator's command changed (actor ``cli``), in the audit log and as an event."""
    with _sessions(db_url).begin() as session:
        audit.record(session, "cli", action, target=target, details=details)


@token.command("create")
@click.option("--name", required=True, help="what the token is for, e.g. 'crm-sync'")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--email", help="the customer's email (customer tokens) or the agent's")
@click.option("--team", "teams", multiple=True, help="limit an agent to these teams (repeatable)")
@click.option("--scope", "scopes", multiple=True, type=click.Choice(SCOPES),
              help="read, write, admin (repeatable; default: all the role may hold)")
@click.option("--expires-in-days", type=click.IntRange(1, 3650), default=90, show_default=True)
@click.option("--no-expiry", is_flag=True, help="a token that never expires")
@click.pass_obj
def create(db_url, name, role, email, teams, scopes, expires_in_days, no_expiry):
    """Create a token and print it: it is shown only this once."""
    lifetime = None if no_expiry else timedelta(days=expires_in_days)
    try:
        token_id, secret = create_token(_sessions(db_url), name, role, email, teams, scopes, lifetime)
    except ValueError as error:
        raise click.UsageError(str(error))
    _audit(db_url, "token.created", f"token:{token_id}", {"name": name, "role": role, "email": email,
                                                          "teams": list(teams), "scopes": list(scopes),
                                                          "expires_in_days": None if no_expiry else expires_in_days})
    click.echo(secret)
    click.echo(f"token {token_id} ({role}) created; store it now, it cannot be shown again", err=True)


@token.command("list")
@click.pass_obj
def list_tokens(db_url):
    """List tokens (never their secret): id, name, role, email, teams, scopes, expiry, state."""
    now = utcnow()
    with _sessions(db_url)() as session:
        for record in session.scalars(select(ApiToken).order_by(ApiToken.id)):
            state = ("revoked" if record.revoked_at else
                     "expired" if record.expires_at and record.expires_at <= now else "active")
            click.echo(f"{record.id}\t{record.name}\t{record.role}\t{record.email or '-'}\t"
                       f"{','.join(record.teams or []) or '-'}\t{','.join(record.scopes or ['(all)'])}\t"
                       f"{record.expires_at.date().isoformat() if record.expires_at else 'never'}\t{state}")


@token.command("revoke")
@click.argument("token_id", type=int)
@click.pass_obj
def revoke(db_url, token_id):
    """Revoke a token: refused at once by every gateway worker."""
    if revoke_token(_sessions(db_url), token_id) is None:
        raise click.UsageError(f"no token {token_id}")
    _audit(db_url, "token.revoked", f"token:{token_id}")
    click.echo(f"token {token_id} revoked")


@token.command("rotate-bootstrap")
@click.option("--write", "path", type=click.Path(dir_okay=False), help="also write the new token to this file (mode 600)")
@click.pass_obj
def rotate_bootstrap_token(db_url, path):
    """Make a new bootstrap admin token and print it; HELPDESK_BOOTSTRAP_TOKEN and every earlier bootstrap
    token stop working at once (remove HELPDESK_BOOTSTRAP_TOKEN from the environment afterwards)."""
    token_id, secret = rotate_bootstrap(_sessions(db_url))
    _audit(db_url, "bootstrap.rotated", f"token:{token_id}")
    if path:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as stream:
            stream.write(secret + "\n")
    click.echo(secret)
    click.echo(f"bootstrap token rotated (token {token_id}); the previous one no longer works", err=True)


@main.group()
def account():
    """Create people's accounts for the web workspace and reset their passwords."""


def _routing_agent_id(email):
    """The routing agent with ``email`` (the link of an agent account), or None when routing has none or
    cannot be asked now (the gateway links it at the person's first sign-in then)."""
    from .rpc import RpcPool

    pool = RpcPool(Settings().amqp_uri, size=1, timeout=5)
    try:
        return accounts.find_agent_id(pool.call("routing", "list_agents"), email)
    except Exception as error:  # the platform may not be running yet (the first admin is made before)
        click.echo(f"routing could not be asked ({error}); the agent is linked at the first sign-in", err=True)
        return None
    finally:
        pool.close()


@account.command("create")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice(accounts.ACCOUNT_ROLES), required=True)
@click.option("--name", help="the person's name as the workspace shows it")
@click.option("--password", help=f"at least {accounts.MIN_PASSWORD} characters (default: one is made and printed)")
@click.option("--language", type=click.Choice(("en", "nl", "sv")), help="default: the browser's")
@click.option("--time-zone", "time_zone", help="e.g. Europe/Stockholm (default: UTC)")
@click.pass_obj
def create_account(db_url, email, role, name, password, language, time_zone):
    """Create an account. An agent account is linked to the routing agent with the same email."""
    made = password is None
    password = password or accounts.generate_password()
    agent_id = _routing_agent_id(email) if role == "agent" else None
    try:
        account_id = accounts.create_account(_sessions(db_url), email, role, password, name=name, agent_id=agent_id,
                                             language=language, time_zone=time_zone)
    except ValueError as error:
        raise click.UsageError(str(error))
    _audit(db_url, "account.created", accounts.normal_email(email), {"role": role, "agent_id": agent_id})
    if made:
        click.echo(password)
    linked = f", linked to routing agent {agent_id}" if agent_id else ""
    click.echo(f"account {account_id} ({role}) created for {accounts.normal_email(email)}{linked}", err=True)


@account.command("reset")
@click.option("--email", required=True)
@click.option("--password", help=f"at least {accounts.MIN_PASSWORD} characters (default: one is made and printed)")
@click.pass_obj
def reset_account(db_url, email, password):
    """Set a new password (and lift a sign-in lock)."""
    made = password is None
    password = password or accounts.generate_password()
    try:
        accounts.reset_password(_sessions(db_url), email, password)
    except ValueError as error:
        raise click.UsageError(str(error))
    _audit(db_url, "account.password_reset", accounts.normal_email(email))
    if made:
        click.echo(password)
    click.echo(f"password of {accounts.normal_email(email)} reset", err=True)


@main.command()
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="file to write (default: stdout)")
def openapi(output):
    """Print the OpenAPI 3.1 document."""
    from .app import create_app
    from .openapi import document

    create_app(Settings(database_url="sqlite://"))  # registers every route
    text = json.dumps(document(), indent=2) + "\n"
    if output:
        with open(output, "w") as stream:
            stream.write(text)
    else:
        click.echo(text, nl=False)


@main.command()
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, help="the running platform's gateway")
@click.option("--token", envvar="HELPDESK_BOOTSTRAP_TOKEN", required=True, help="an admin token")
def demo(url, token):
    """Fill a running platform with a small demo organisation, through its API (run twice: nothing doubled)."""
    from .demo import Api, DemoError, load

    try:
        load(Api(url, token), echo=click.echo)
    except DemoError as error:
        raise click.ClickException(str(error))
