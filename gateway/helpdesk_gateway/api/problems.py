"""Proactive problem detection and problems: the REST routes, and the functions the workspace calls too.

Analytics finds surges and groups of similar open tickets (``GET /api/v1/problems``); the tickets service owns
problems (a problem ticket with incidents linked, one update to all their customers, solved together).
"""
from flask import Blueprint, jsonify

from helpdesk_common.contracts import validate
from helpdesk_common.contracts.analytics import ProblemsOverview
from helpdesk_common.contracts.tickets import (ProblemLinkRequest, ProblemRequest, ProblemUpdate, ProblemUpdateSent,
                                               ProblemView)

from . import json_body, operation, services, viewer

bp = Blueprint("problems", __name__, url_prefix="/api/v1")

STAFF = ("admin", "agent")
WRITE_ERRORS = (400, 403, 404, 409, 413, 415, 422)


@operation(bp, "/problems", "GET", summary="Surges and similar open tickets", tag="problems",
           answer=ProblemsOverview, roles=STAFF, errors=(403,), scope="list")
def overview():
    """The surges analytics announced in the last 24 hours (``spike_detected``) and the open tickets of the last
    7 days worded alike (the knowledge base's language analysis), as groups an agent can turn into one problem.
    An agent sees only the tickets of their teams and their own."""
    return jsonify(read_overview())


@operation(bp, "/problems", "POST", summary="Turn tickets into one problem", tag="problems", body=ProblemRequest,
           answer=ProblemView, answer_status=201, roles=STAFF, errors=WRITE_ERRORS, scope="ticket")
def create():
    """Opens a problem ticket (tagged ``problem``) and links ``incidents`` to it. 409 ``already_incident`` for a
    ticket of another problem, ``problem_not_incident`` for a problem given as an incident. Every incident must
    be visible to the caller (404 otherwise, and nothing is written)."""
    return jsonify(create_problem(json_body())), 201


@operation(bp, "/problems/<number>", "GET", summary="A problem and its incidents", tag="problems",
           answer=ProblemView, roles=STAFF, errors=(403, 404))
def read(number):
    return jsonify(read_problem(number))


@operation(bp, "/problems/<number>/incidents", "POST", summary="Link more incidents to a problem",
           tag="problems", body=ProblemLinkRequest, answer=ProblemView, roles=STAFF, errors=WRITE_ERRORS)
def link(number):
    validate(ProblemLinkRequest, body := json_body())
    return jsonify(services().call("tickets", "link_incidents", number, body, viewer()))


@operation(bp, "/problems/<number>/updates", "POST", summary="One update to every incident's customer",
           tag="problems", body=ProblemUpdate, answer=ProblemUpdateSent, answer_status=201, roles=STAFF,
           errors=WRITE_ERRORS)
def update(number):
    """A public reply with ``body`` on each open incident (each customer gets it on their own channel), and an
    internal note on the problem naming them. 409 ``no_open_incidents``. Solving the problem solves its open
    incidents (tickets service setting ``PROBLEM_SOLVES_INCIDENTS``)."""
    return jsonify(send_update(number, json_body())), 201


def read_overview():
    return services().call("analytics", "problems", viewer())


def create_problem(problem):
    validate(ProblemRequest, problem)
    return services().call("tickets", "create_problem", problem, viewer())


def read_problem(number):
    return services().call("tickets", "get_problem", number, viewer())


def send_update(number, update):
    validate(ProblemUpdate, update)
    return services().call("tickets", "send_problem_update", number, update, viewer())
