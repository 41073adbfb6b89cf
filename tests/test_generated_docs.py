"""The committed API and event documents are what the code generates: run `make docs` after a change."""
import json
import os
import subprocess

from stack import BIN, ROOT


def generated(command):
    return json.loads(subprocess.run([os.path.join(BIN, command[0]), *command[1:]], cwd=ROOT, check=True,
                                     capture_output=True, text=True).stdout)


def committed(name):
    with open(os.path.join(ROOT, "docs", name)) as stream:
        return json.load(stream)


def test_event_catalogue_document_is_current():
    document = generated(["helpdesk-events"])
    assert document["asyncapi"].startswith("3.")
    assert {"ticket_created", "ticket_updated", "status_changed", "message_added"} <= set(document["channels"])
    assert document == committed("events.asyncapi.json"), "docs/events.asyncapi.json is stale: run `make docs`"


def test_openapi_document_is_current():
    assert generated(["helpdesk", "openapi"]) == committed("openapi.json"), \
        "docs/openapi.json is stale: run `make docs`"
