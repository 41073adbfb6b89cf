"""Who may act on what in routing (``helpdesk_routing.access``), through the domain functions the entrypoints call:
a team-limited agent acts only on tickets routing holds in their teams (or in none), lists only their
teams' queues, and sets only their own presence; admins do everything."""
import pytest

from helpdesk_common.contracts.routing import Viewer
from helpdesk_common.errors import Forbidden, NotFound
from helpdesk_routing import domain

ADMIN = Viewer(actor="ada", role="admin")
ALPHA = Viewer(actor="token:1", role="agent", email="al@example.com", teams=["alpha"])
BETA = Viewer(actor="token:2", role="agent", email="bea@example.com", teams=["beta"])
UNLIMITED = Viewer(actor="token:3", role="agent", email="una@example.com")
CUSTOMER = Viewer(actor="token:4", role="customer", email="cus@example.com")


@pytest.fixture
def world(team, agent, route):
    team("alpha")
    team("beta")
    al = agent("Al", teams=["alpha"], presence="offline")
    bea = agent("Bea", teams=["beta"], presence="offline")
    return {"al": al, "bea": bea, "beta_ticket": route(team="beta")["number"],
            "alpha_ticket": route(team="alpha")["number"], "untriaged": route()["number"]}


def test_escalating_another_teams_ticket_into_ones_own_is_the_404_of_a_missing_ticket(world, run):
    with pytest.raises(NotFound) as refused:
        run(lambda s, c: domain.escalate(s, world["beta_ticket"], "mine", "manual", c, to_team="alpha", viewer=ALPHA))
    assert refused.value.code == "ticket_not_found"
    assert run(lambda s, c: domain.routing_of(s, world["beta_ticket"]))["team"] == "beta"
    # one's own team's ticket may go anywhere, an untriaged one too
    assert run(lambda s, c: domain.escalate(s, world["alpha_ticket"], "experts", "manual", c, to_team="beta",
                                            viewer=ALPHA))["team"] == "beta"
    assert run(lambda s, c: domain.escalate(s, world["untriaged"], "ours", "manual", c, to_team="alpha",
                                            viewer=ALPHA))["team"] == "alpha"
    # ... and once it left the team, it is out of reach
    with pytest.raises(NotFound):
        run(lambda s, c: domain.escalate(s, world["alpha_ticket"], "back", "manual", c, to_team="alpha", viewer=ALPHA))


def test_reassigning_or_reading_another_teams_ticket_is_refused(world, run):
    for act in (lambda s, c: domain.assign_manually(s, world["beta_ticket"], world["al"]["id"], "take", c, viewer=ALPHA),
                lambda s, c: domain.routing_of(s, world["beta_ticket"], viewer=ALPHA),
                lambda s, c: domain.routing_of(s, world["beta_ticket"], viewer=CUSTOMER)):
        with pytest.raises(NotFound):
            run(act)
    assert run(lambda s, c: domain.assign_manually(s, world["beta_ticket"], world["bea"]["id"], "take", c,
                                                   viewer=BETA))["agent_id"] == world["bea"]["id"]
    for who in (ADMIN, UNLIMITED):
        assert run(lambda s, c: domain.routing_of(s, world["beta_ticket"], viewer=who))["team"] == "beta"


def test_queues_only_of_ones_teams(world, run):
    def numbers(team, who):
        return {t["number"] for t in run(lambda s, c: domain.queue(s, team, viewer=who))}

    assert numbers(None, ALPHA) == {world["alpha_ticket"], world["untriaged"]}
    assert numbers("alpha", ALPHA) == {world["alpha_ticket"]}
    with pytest.raises(Forbidden) as refused:
        numbers("beta", ALPHA)
    assert refused.value.code == "team_not_allowed"
    everything = {world["alpha_ticket"], world["beta_ticket"], world["untriaged"]}
    assert numbers(None, ADMIN) == numbers(None, UNLIMITED) == everything
    assert numbers("beta", UNLIMITED) == {world["beta_ticket"]}
    assert numbers(None, CUSTOMER) == set()


def test_presence_is_set_by_the_agent_themselves_or_an_admin(world, run):
    with pytest.raises(Forbidden) as refused:
        run(lambda s, c: domain.set_presence(s, world["bea"]["id"], "away", c, viewer=ALPHA))
    assert refused.value.code == "not_your_agent"
    with pytest.raises(Forbidden):  # no team limit is no licence to act as someone else
        run(lambda s, c: domain.set_presence(s, world["bea"]["id"], "away", c, viewer=UNLIMITED))
    me = Viewer(actor="token:9", role="agent", email="AL@example.com", teams=["alpha"])  # case does not matter
    assert run(lambda s, c: domain.set_presence(s, world["al"]["id"], "away", c, viewer=me))["presence"] == "away"
    assert run(lambda s, c: domain.set_presence(s, world["bea"]["id"], "away", c, viewer=ADMIN))["presence"] == "away"
