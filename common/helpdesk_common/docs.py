"""Generate the AsyncAPI document of the event stream from the catalogue (``helpdesk-events``)."""
import argparse
import json
import sys

from .events import CATALOGUE, envelope_schema, exchange_name


def asyncapi() -> dict:
    """An AsyncAPI 3.0 document describing every event type in the catalogue."""
    channels, operations, messages, schemas = {}, {}, {}, {}
    for name, entry in sorted(CATALOGUE.items()):
        data_schema = entry.data_model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(data_schema.pop("$defs", {}))
        envelope = envelope_schema()
        envelope["properties"]["type"] = {"const": name}
        envelope["properties"]["source"] = {"const": entry.source}
        envelope["properties"]["schema_version"] = {"const": entry.schema_version}
        envelope["properties"]["data"] = data_schema
        messages[name] = {"name": name, "summary": entry.description, "payload": envelope}
        channels[name] = {
            "address": f"{exchange_name(entry.source)}/{name}",
            "description": f"Topic exchange `{exchange_name(entry.source)}`, routing key `{name}`.",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        operations[f"receive_{name}"] = {"action": "receive", "channel": {"$ref": f"#/channels/{name}"}}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Helpdesk event stream",
            "version": "1",
            "description": "Events every helpdesk service publishes on RabbitMQ. Delivery is at least "
                           "once: deduplicate on the envelope's `id`. Fields may be added at any time; "
                           "ignore the ones you do not know.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", "-o", help="file to write (default: standard output)")
    args = parser.parse_args(argv)
    text = json.dumps(asyncapi(), indent=2, sort_keys=True) + "\n"
    if args.output:
        with open(args.output, "w") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
