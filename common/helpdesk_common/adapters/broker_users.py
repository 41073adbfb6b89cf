"""One broker user per service, with only the permissions it needs (``helpdesk-broker-users``).

Sharing one credential lets any service, or whoever takes one over, publish any event: a forged
``ticket_assigned`` from the knowledge-base container would be applied by the tickets service. Each service
therefore connects as its own user (``HELPDESK_AMQP_URI`` with ``helpdesk-<service>``), and each user may:

- **write** (publish) to its own event exchanges (``<service>.events``, ``<service>.batches``) and to every
  resource that is not an event exchange (``nameko-rpc`` for RPC requests and replies, its queues, the
  default exchange its retries and parking use), but to **no other service's event exchange**;
- **configure** (declare) anything, since nameko declares the exchanges it binds to (another service's
  ``.events``) and its own queues, and **read** (consume, bind from) anything.

Limits known and accepted: through the default exchange a user could still put a message in a queue it
knows the name of, and ``nameko-rpc`` is one exchange for every service's RPC (RabbitMQ's topic permissions
on routing keys would narrow that; not done yet).

Applied through RabbitMQ's management API (idempotent: run it at every deployment)::

    HELPDESK_BROKER_PASSWORDS='tickets=...,routing=...' helpdesk-broker-users \\
        --api http://admin:secret@rabbitmq:15672 --vhost /
"""
import argparse
import base64
import json
import os
import sys
import urllib.parse
import urllib.request

SERVICES = ("tickets", "routing", "intake", "kb_search", "analytics", "surveys", "gateway")
EVENT_EXCHANGE = r"[^.]+\.(events|batches)"


def user_name(service, prefix="helpdesk"):
    return f"{prefix}-{service.replace('_', '-')}"


def permissions(service):
    """The vhost permissions of ``service``'s user: RabbitMQ regular expressions on resource names."""
    return {"configure": ".*",
            "write": rf"^({service}\.(events|batches)|(?!{EVENT_EXCHANGE}$).*)$",
            "read": ".*"}


class ManagementApi:
    def __init__(self, url):
        parts = urllib.parse.urlsplit(url)
        self.base = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}/api"
        credentials = f"{urllib.parse.unquote(parts.username or 'guest')}:{urllib.parse.unquote(parts.password or 'guest')}"
        self.auth = "Basic " + base64.b64encode(credentials.encode()).decode()

    def put(self, path, body):
        request = urllib.request.Request(self.base + path, data=json.dumps(body).encode(), method="PUT",
                                         headers={"Authorization": self.auth, "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status


def apply(api_url, vhost, passwords, prefix="helpdesk"):
    """Create (or update) every service's user (``<prefix>-<service>``) with its password and permissions on
    ``vhost``; returns service -> user name."""
    api = ManagementApi(api_url)
    quoted = urllib.parse.quote(vhost, safe="")
    for service, password in passwords.items():
        if service not in SERVICES:
            raise ValueError(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
        name = user_name(service, prefix)
        api.put(f"/users/{name}", {"password": password, "tags": ""})
        api.put(f"/permissions/{quoted}/{name}", permissions(service))
    return {service: user_name(service, prefix) for service in passwords}


def main(argv=None):
    parser = argparse.ArgumentParser(description="Create one broker user per service, with only its permissions.")
    parser.add_argument("--api", default=os.environ.get("HELPDESK_RABBIT_API", "http://guest:guest@127.0.0.1:15672"),
                        help="RabbitMQ management API, with an administrator's credentials")
    parser.add_argument("--vhost", default=os.environ.get("HELPDESK_BROKER_VHOST", "/"))
    args = parser.parse_args(argv)
    raw = os.environ.get("HELPDESK_BROKER_PASSWORDS", "")
    passwords = dict(item.split("=", 1) for item in raw.split(",") if "=" in item)
    if not passwords:
        print("set HELPDESK_BROKER_PASSWORDS='tickets=...,routing=...,intake=...,kb_search=...,analytics=...,surveys=...,"
              "gateway=...'",
              file=sys.stderr)
        return 2
    for service, user in apply(args.api, args.vhost, passwords).items():
        print(f"{service}: {user}")
    return 0
