"""Who may act on what in routing, as plain functions of the caller's ``Viewer``. No nameko in here.

The gateway authenticates and says which roles may call a route; the rules of *which* tickets, queues
and agents a caller may touch live here, next to the data they depend on (routing is the one writer of
a ticket's team, so routing decides by its own record of it, not by what a caller claims):

- admins (and the platform itself, role ``system``) act on everything;
- an agent whose token names teams acts on the tickets routing holds in one of those teams, or in none
  (untriaged tickets are everybody's, as in the tickets service); any other ticket answers the same 404
  as a missing one, so a ticket's existence does not leak;
- such an agent lists only their teams' queues (plus the untriaged one); asking for another team's queue
  is refused (403 ``team_not_allowed``) rather than answered empty, so a client learns why;
- an agent without teams in their token sees every team's tickets and queues (as in the tickets service);
- presence is personal: an agent sets only their own (the routing agent with their token's email);
  admins set anyone's (a supervisor is an admin here).
"""
from .exceptions import not_your_agent, team_not_allowed, ticket_not_found

UNLIMITED_ROLES = ("admin", "system")


def team_limited(viewer):
    """The teams ``viewer`` is limited to, or None when they may see every team."""
    if viewer is None:
        return ()  # no viewer: nothing, never everything
    if viewer.role in UNLIMITED_ROLES:
        return None
    if viewer.role == "agent":
        return tuple(viewer.teams) or None
    return ()  # customers and visitors have no business in routing


def may_see_team(viewer, team):
    teams = team_limited(viewer)
    if teams is None:
        return True
    return bool(teams) and (team is None or team in teams)  # () sees nothing, not even untriaged tickets


def check_ticket(viewer, routed, number):
    """``routed`` if ``viewer`` may act on it; the 404 of a missing ticket otherwise."""
    if routed is None or not may_see_team(viewer, routed.team):
        raise ticket_not_found(number)
    return routed


def queue_teams(viewer, team):
    """The teams whose queue ``viewer`` may list for the filter ``team``: None for every team, else a
    tuple (``None`` inside it stands for untriaged tickets)."""
    teams = team_limited(viewer)
    if teams is None:
        return None if team is None else (team,)
    if not teams:
        return ()  # no queue at all
    if team is None:
        return (*teams, None)
    if team not in teams:
        raise team_not_allowed(teams, team)
    return (team,)


def check_own_agent(viewer, agent):
    """Presence is set by the agent themselves (matched by email) or an admin."""
    if viewer.role in UNLIMITED_ROLES:
        return agent
    if viewer.role == "agent" and viewer.email and viewer.email.lower() == (agent.email or "").lower():
        return agent
    raise not_your_agent()
