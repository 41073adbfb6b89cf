"""``helpdesk``: the operator's command for the gateway (tokens, migrations, the OpenAPI document)."""
import json
import os

import click
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from helpdesk_common.adapters.database import engine_for
from helpdesk_common.database import utcnow
from helpdesk_common.adapters.migrations import Migrations

from .auth import ROLES, create_token
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


@token.command("create")
@click.option("--name", required=True, help="what the token is for, e.g. 'crm-sync'")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--email", help="the customer's email (customer tokens) or the agent's")
@click.option("--team", "teams", multiple=True, help="limit an agent to these teams (repeatable)")
@click.pass_obj
def create(db_url, name, role, email, teams):
    """Create a token and print it: it is shown only this once."""
    try:
        token_id, secret = create_token(_sessions(db_url), name, role, email, teams)
    except ValueError as error:
        raise click.UsageError(str(error))
    click.echo(secret)
    click.echo(f"token {token_id} ({role}) created; store it now, it cannot be shown again", err=True)


@token.command("list")
@click.pass_obj
def list_tokens(db_url):
    """List tokens (never their secret)."""
    with _sessions(db_url)() as session:
        for record in session.scalars(select(ApiToken).order_by(ApiToken.id)):
            state = "revoked" if record.revoked_at else "active"
            click.echo(f"{record.id}\t{record.name}\t{record.role}\t{record.email or '-'}\t"
                       f"{','.join(record.teams or []) or '-'}\t{state}")


@token.command("revoke")
@click.argument("token_id", type=int)
@click.pass_obj
def revoke(db_url, token_id):
    """Revoke a token (effective within the gateway's token cache time)."""
    with _sessions(db_url).begin() as session:
        record = session.get(ApiToken, token_id)
        if record is None:
            raise click.UsageError(f"no token {token_id}")
        record.revoked_at = record.revoked_at or utcnow()
    click.echo(f"token {token_id} revoked")


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
