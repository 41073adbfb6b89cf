"""Errors of the routing service.

Callers receive the shared error classes of ``helpdesk_common.errors`` (which nameko rebuilds on the
caller's side) with a code particular to routing; these are constructors, not classes.
"""
from helpdesk_common.errors import Conflict, Forbidden, NotFound


def ticket_not_found(number):
    """The answer for a missing ticket and for one the caller may not act on alike."""
    return NotFound(f"Routing has not seen ticket {number} (yet).", code="ticket_not_found")


def agent_not_found(agent_id):
    return NotFound(f"There is no agent {agent_id}.", code="agent_not_found")


def team_not_found(name):
    return NotFound(f"There is no team {name!r}.", code="team_not_found")


def rule_not_found(rule_id):
    return NotFound(f"There is no routing rule {rule_id}.", code="rule_not_found")


def team_exists(name):
    return Conflict(f"A team named {name!r} exists already.", code="team_exists")


def agent_exists(email):
    return Conflict(f"An agent with email {email} exists already.", code="agent_exists")


def ticket_closed(number):
    return Conflict(f"Ticket {number} is resolved or closed; reopen it before escalating.", code="ticket_closed")


def no_escalation_path(number):
    return Conflict(f"Ticket {number} is at the last tier already.", code="no_escalation_path")


def team_not_allowed(teams, team):
    return Forbidden(f"Your token is limited to the teams {', '.join(teams) or '(none)'}; "
                     f"ask an admin for team {team!r}.", code="team_not_allowed")


def not_your_agent():
    return Forbidden("Agents set their own presence only (the agent with your token's email); "
                     "an admin sets anyone's.", code="not_your_agent")
