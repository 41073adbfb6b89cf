"""The routing API: agents, presence, teams, routing rules, manual assignment, escalation, queues.

Register with ``app.register_blueprint(routing.bp)`` (routes are declared once with ``operation``, so
they appear in the OpenAPI document). Calls the ``routing`` service over RPC.
"""
from flask import Blueprint, jsonify, url_for

from helpdesk_common.contracts import validate
from helpdesk_common.errors import NotFound
from helpdesk_common.contracts.routing import (AgentChanges, AgentView, Escalation, ManualAssignment, NewAgent,
                                               NewRule, NewTeam, PresenceChange, QueueQuery, RoutedTicketView,
                                               RuleChanges, RuleView, TeamChanges, TeamView)

from . import json_body, operation, query_args, services, viewer

bp = Blueprint("routing", __name__, url_prefix="/api/v1")

WRITE_ERRORS = (400, 413, 415, 422)
STAFF = ("admin", "agent")


def _agent_id(agent_id):
    if not agent_id.isdigit():
        raise NotFound(f"There is no agent {agent_id}.", code="agent_not_found")
    return int(agent_id)


@operation(bp, "/agents", "POST", summary="Create an agent", tag="routing", body=NewAgent, answer=AgentView,
           answer_status=201, roles=("admin",), errors=WRITE_ERRORS + (403, 409))
def create_agent():
    """Name, email, languages, skills (name → level 1-5), teams, tier, capacity (maximum open tickets),
    presence and working hours. An agent created online takes waiting tickets at once."""
    agent = add_agent(json_body())
    response = jsonify(agent)
    response.status_code = 201
    response.headers["Location"] = url_for("routing.get_agent", agent_id=agent["id"])
    return response


@operation(bp, "/agents", "GET", summary="List agents", tag="routing", answer=AgentView, answer_is_list=True,
           roles=STAFF, errors=(403,))
def list_agents():
    """Every agent with their current load and presence."""
    return jsonify(read_agents())


def add_agent(body):
    """Create an agent (the REST route and the admin page)."""
    validate(NewAgent, body)
    return services().call("routing", "create_agent", body, viewer())


def read_agents():
    """Every agent (the workspace's assign list and the account-to-agent link use this too)."""
    return services().call("routing", "list_agents")


@operation(bp, "/agents/<agent_id>", "GET", summary="Read an agent", tag="routing", answer=AgentView, roles=STAFF,
           errors=(403, 404))
def get_agent(agent_id):
    return jsonify(services().call("routing", "get_agent", _agent_id(agent_id)))


@operation(bp, "/agents/<agent_id>", "PATCH", summary="Change an agent", tag="routing", body=AgentChanges,
           answer=AgentView, roles=("admin",), errors=WRITE_ERRORS + (403, 404, 409))
def update_agent(agent_id):
    """Changes only the fields given. More capacity, a new team or tier takes waiting tickets at once."""
    return jsonify(change_agent(_agent_id(agent_id), json_body()))


def change_agent(agent_id, changes):
    validate(AgentChanges, changes)
    return services().call("routing", "update_agent", agent_id, changes, viewer())


@operation(bp, "/agents/<agent_id>/presence", "PUT", summary="Set an agent's presence", tag="routing",
           body=PresenceChange, answer=AgentView, roles=STAFF, errors=WRITE_ERRORS + (403, 404), scope="own_agent")
def set_presence(agent_id):
    """``online`` (takes waiting tickets at once), ``away`` or ``offline`` (keeps their tickets). Agents set
    their own (the agent with their token's email); admins anyone's (403 ``not_your_agent``)."""
    body = json_body()
    validate(PresenceChange, body)
    return jsonify(services().call("routing", "set_presence", _agent_id(agent_id), body, viewer()))


@operation(bp, "/teams", "POST", summary="Create a team", tag="routing", body=NewTeam, answer=TeamView,
           answer_status=201, roles=("admin",), errors=WRITE_ERRORS + (403, 409))
def create_team():
    """A team with its queue, tier, selection strategy (``round_robin``, ``least_loaded``,
    ``skills_and_load``) and escalation path (``escalates_to``)."""
    return jsonify(add_team(json_body())), 201


def add_team(body):
    validate(NewTeam, body)
    return services().call("routing", "create_team", body)


@operation(bp, "/teams", "GET", summary="List teams", tag="routing", answer=TeamView, answer_is_list=True,
           roles=STAFF, errors=(403,))
def list_teams():
    """Every team with the number of tickets waiting in its queue."""
    return jsonify(read_teams())


def read_teams():
    return services().call("routing", "list_teams")


@operation(bp, "/teams/<name>", "PATCH", summary="Change a team", tag="routing", body=TeamChanges, answer=TeamView,
           roles=("admin",), errors=WRITE_ERRORS + (403, 404))
def update_team(name):
    return jsonify(change_team(name, json_body()))


def change_team(name, changes):
    validate(TeamChanges, changes)
    return services().call("routing", "update_team", name, changes, viewer())


@operation(bp, "/routing/rules", "POST", summary="Add a routing rule", tag="routing", body=NewRule,
           answer=RuleView, answer_status=201, roles=("admin",), errors=WRITE_ERRORS + (403,))
def add_rule():
    """Rules are tried in ``position`` order and the first match decides team, tier, required skills
    and priority. Conditions: channels, mailboxes, categories, languages, priorities, requester
    domains, custom fields, words in subject or description."""
    return jsonify(add_routing_rule(json_body())), 201


def add_routing_rule(body):
    validate(NewRule, body)
    return services().call("routing", "add_rule", body)


@operation(bp, "/routing/rules", "GET", summary="List routing rules", tag="routing", answer=RuleView,
           answer_is_list=True, roles=STAFF, errors=(403,))
def list_rules():
    return jsonify(read_rules())


def read_rules():
    return services().call("routing", "list_rules")


@operation(bp, "/routing/rules/<int:rule_id>", "PATCH", summary="Change or move a routing rule", tag="routing",
           body=RuleChanges, answer=RuleView, roles=("admin",), errors=WRITE_ERRORS + (403, 404))
def update_rule(rule_id):
    """Only the fields given change; ``conditions`` and ``actions`` replace the rule's whole conditions or
    actions. ``position`` moves the rule (1 is tried first), shifting the rules in between by one: this is
    how rules are reordered."""
    return jsonify(change_rule(rule_id, json_body()))


def change_rule(rule_id, changes):
    validate(RuleChanges, changes)
    return services().call("routing", "update_rule", rule_id, changes)


@operation(bp, "/routing/rules/<int:rule_id>", "DELETE", summary="Delete a routing rule", tag="routing",
           roles=("admin",), errors=(403, 404))
def delete_rule(rule_id):
    return jsonify(remove_rule(rule_id))


def remove_rule(rule_id):
    return services().call("routing", "delete_rule", rule_id)


@operation(bp, "/routing/queue", "GET", summary="Waiting tickets", tag="routing", query=QueueQuery,
           answer=RoutedTicketView, answer_is_list=True, roles=STAFF, errors=(403, 422), scope="team_queue")
def list_queue():
    """Tickets waiting for an agent, most urgent first, then oldest; filter by ``team``. An agent whose token
    names teams sees those teams' queues and the untriaged tickets; another team: 403 ``team_not_allowed``."""
    return jsonify(read_queue(query_args(QueueQuery).model_dump()))


def read_queue(query):
    """Waiting tickets the caller may see (QueueQuery's fields)."""
    return services().call("routing", "list_queue", query, viewer())


@operation(bp, "/tickets/<number>/assignment", "PUT", summary="Assign a ticket by hand", tag="routing",
           body=ManualAssignment, answer=RoutedTicketView, roles=STAFF, errors=WRITE_ERRORS + (403, 404))
def assign_ticket(number):
    """Assign or reassign to ``agent_id`` with a ``reason`` (recorded); allowed beyond capacity."""
    body = json_body()
    validate(ManualAssignment, body)
    return jsonify(services().call("routing", "assign_ticket", number, body, viewer()))


@operation(bp, "/tickets/<number>/escalations", "POST", summary="Escalate a ticket", tag="routing",
           body=Escalation, answer=RoutedTicketView, answer_status=201, roles=STAFF,
           errors=WRITE_ERRORS + (403, 404, 409))
def escalate_ticket(number):
    """To the team's escalation target, or the next tier; or to ``to_team``. The reason is recorded."""
    body = json_body()
    validate(Escalation, body)
    return jsonify(services().call("routing", "escalate_ticket", number, body, viewer())), 201


@operation(bp, "/tickets/<number>/routing", "GET", summary="How a ticket was routed", tag="routing",
           answer=RoutedTicketView, roles=STAFF, errors=(403, 404))
def get_ticket_routing(number):
    """Team, tier, queue state, current agent, and every assignment and escalation with its reason."""
    return jsonify(services().call("routing", "get_ticket_routing", number, viewer()))
