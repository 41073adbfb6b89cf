"""A routing replica for the concurrency tests, run as its own process against a shared database.

``python contend.py URL route NUMBERS_FILE SEED``: route every ticket of the file (in a shuffled order),
each in its own transaction, as ``ticket_created`` handlers of several replicas would.
``python contend.py URL route-batch NUMBERS_FILE SEED``: the same, in batches of 17 per transaction
(``batch.route_new_tickets``, as the service's collector does).
``python contend.py URL resolve NUMBERS...``: resolve those tickets (capacity frees, queues drain).
Prints a JSON summary. Retries a transaction that lost a race, as the service does.
"""
import json
import random
import sys
import time

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import sessionmaker

from helpdesk_common.adapters.database import engine_for
from helpdesk_routing import batch, domain

SETTINGS = domain.Settings()


def ticket(number, index):
    priority = ("low", "normal", "high", "urgent")[index % 4]
    return {"number": number, "subject": "Printer", "description": "The printer does not print at all.",
            "requester": {"email": "c@example.com"}, "channel": "api", "priority": priority, "status": "new",
            "team": "desk", "tier": 1, "language": "en", "custom_fields": {}, "version": 1,
            "created_at": "2026-11-23T12:00:00+00:00", "updated_at": "2026-11-23T12:00:00+00:00"}


def attempt(sessions, change):
    for _ in range(20):
        try:
            with sessions.begin() as session:
                return change(session)
        except IntegrityError:
            continue  # the same ticket inserted by another replica: the next attempt sees it
        except DBAPIError as error:  # PostgreSQL deadlock / serialization: retry, as the service does
            if getattr(error.orig, "pgcode", None) in ("40P01", "40001"):
                time.sleep(random.random() * 0.01)
                continue
            raise
    raise RuntimeError("gave up after 20 attempts")


def main(url, mode, *args):
    sessions = sessionmaker(engine_for(url), expire_on_commit=False)
    outcomes = {}
    if mode == "route":
        numbers = json.load(open(args[0]))
        order = list(enumerate(numbers))
        random.Random(int(args[1])).shuffle(order)
        for index, number in order:
            view = attempt(sessions, lambda s: batch.route_new_ticket(s, ticket(number, index), SETTINGS,
                                                                       domain.Context().now))
            state = view["state"] if view else "seen"
            outcomes[state] = outcomes.get(state, 0) + 1
    elif mode == "route-batch":
        numbers = json.load(open(args[0]))
        order = list(enumerate(numbers))
        random.Random(int(args[1])).shuffle(order)
        for start in range(0, len(order), 17):
            part = [ticket(number, index) for index, number in order[start:start + 17]]
            views = attempt(sessions, lambda s: batch.route_new_tickets(s, part, SETTINGS, domain.Context().now))
            for view in views:
                state = view["state"] if view else "seen"
                outcomes[state] = outcomes.get(state, 0) + 1
    else:
        for number in args:
            changed = {"number": number, "status": "resolved", "priority": "normal"}
            result = attempt(sessions, lambda s: domain.ticket_changed(
                s, changed, [{"field": "status", "old": "open", "new": "resolved"}], SETTINGS, domain.Context()))
            outcomes[str(result)] = outcomes.get(str(result), 0) + 1
    print(json.dumps(outcomes))


if __name__ == "__main__":
    main(*sys.argv[1:])
