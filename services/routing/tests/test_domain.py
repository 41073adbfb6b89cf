"""The routing rules on a real (SQLite) database: assign, queue, drain, manual, escalate, events."""
from datetime import timedelta

import pytest
from sqlalchemy import select

from helpdesk_common.contracts.routing import AgentChanges, NewRule, TeamChanges
from helpdesk_common.errors import Conflict, NotFound, ValidationFailed
from helpdesk_common.events import CATALOGUE
from helpdesk_routing import domain
from helpdesk_routing.models import Agent, Assignment


def load_of(sessions, agent_id):
    with sessions() as session:
        return session.get(Agent, agent_id).load


def changed(run, settings, view, *changes):
    return run(lambda s, c: domain.ticket_changed(s, view, [{"field": f, "old": o, "new": n} for f, o, n in changes],
                                                   settings, c))


def test_new_ticket_goes_to_the_right_agent_by_rule_skill_and_language(team, agent, rule, route, events):
    team("network")
    team("billing", strategy="least_loaded")
    eva = agent("Eva", languages=["sv", "en"], skills={"vpn": 4}, teams=["network"])
    jan = agent("Jan", languages=["nl"], skills={"vpn": 2}, teams=["network"])
    bob = agent("Bob", languages=["en"], teams=["billing"])
    rule("billing", {"words": ["invoice"]}, team="billing")
    rule("vpn", {"words": ["vpn"]}, team="network", required_skills={"vpn": 2}, priority="high")

    sv = route(subject="VPN", description="Min VPN fungerar inte sedan i måndags", language=None)
    nl = route(subject="VPN", description="Mijn VPN werkt niet, kunnen jullie helpen?", language=None)
    bill = route(subject="Invoice twice", description="hello", language="sv")
    assert (sv["state"], sv["agent_id"], sv["language"], sv["priority"]) == ("assigned", eva["id"], "sv", "high")
    assert (nl["agent_id"], nl["language"]) == (jan["id"], "nl")
    assert bill["agent_id"] == bob["id"]  # least_loaded teams ignore language

    assigned = events("ticket_assigned")
    assert [e["data"]["ticket_number"] for e in assigned] == [sv["number"], nl["number"], bill["number"]]
    first = CATALOGUE["ticket_assigned"].data_model.model_validate(assigned[0]["data"])
    assert (first.assignee, first.agent.email, first.team, first.tier, first.rule, first.priority) == (
        f"agent-{eva['id']}", "eva@example.com", "network", 1, "vpn", "high")
    assert all(e["source"] == "routing" and e["subject"] == e["data"]["ticket_number"] for e in assigned)


def test_least_loaded_round_robin_among_equals_kept_in_the_database(team, agent, route, sessions):
    team("desk")
    ids = [agent(name, teams=["desk"], capacity=10)["id"] for name in ("A", "B", "C")]
    got = [route(team="desk")["agent_id"] for _ in range(6)]
    assert got == ids + ids  # equal loads: strict rotation
    assert [load_of(sessions, i) for i in ids] == [2, 2, 2]


def test_round_robin_team_rotates_even_when_loads_differ(team, agent, route, run):
    team("rr", strategy="round_robin")
    a = agent("A", teams=["rr"])
    b = agent("B", teams=["rr"])
    manual = route(team="rr")  # -> A
    run(domain.assign_manually, manual["number"], b["id"], "B knows this customer")  # B: load 1, A: 0
    assert route(team="rr")["agent_id"] == a["id"]  # A was assigned longest ago
    assert route(team="rr")["agent_id"] == b["id"]


def test_full_team_queues_and_the_queue_drains_in_priority_then_age_order(ticket, team, agent, route, run, settings,
                                                                           sessions, events, clock):
    team("desk")
    a = agent("A", teams=["desk"], capacity=1)
    first = route(team="desk")
    assert first["agent_id"] == a["id"]
    clock.now += timedelta(minutes=1)
    old_normal = route(team="desk", created_at=(clock.now - timedelta(hours=1)).isoformat())
    urgent = route(team="desk", priority="urgent")
    newer_normal = route(team="desk")
    assert [t["state"] for t in (old_normal, urgent, newer_normal)] == ["queued"] * 3
    assert [q["number"] for q in run(lambda s, c: domain.queue(s, "desk"))] == [
        urgent["number"], old_normal["number"], newer_normal["number"]]
    queued = events("ticket_queued")
    assert queued[-1]["data"]["reason"] == "no agent free" and queued[-1]["data"]["team"] == "desk"

    # A resolves the first ticket: capacity frees, the urgent one comes next
    assert changed(run, settings, ticket(first["number"], status="resolved"), ("status", "open", "resolved")) == "released"
    assert run(lambda s, c: domain.routing_of(s, urgent["number"]))["agent_id"] == a["id"]
    assert load_of(sessions, a["id"]) == 1
    # more capacity takes the next two, oldest first
    run(domain.update_agent, a["id"], AgentChanges(capacity=3))
    assert load_of(sessions, a["id"]) == 3
    assert run(lambda s, c: domain.queue(s)) == []
    reasons = [e["data"]["reason"] for e in events("ticket_assigned")][1:]
    assert reasons == ["from the team queue"] * 3
    assert [e["data"]["ticket_number"] for e in events("ticket_assigned")][1:] == [
        urgent["number"], old_normal["number"], newer_normal["number"]]


def test_agent_coming_online_takes_matching_waiting_tickets_only(team, agent, route, run, rule, sessions):
    team("network")
    rule("vpn", {"words": ["vpn"]}, team="network", required_skills={"vpn": 3})
    expert = agent("Expert", teams=["network"], skills={"vpn": 3}, presence="offline", languages=["en"])
    novice = agent("Novice", teams=["network"], skills={"vpn": 1}, presence="online", languages=["en"])
    hard = route(subject="VPN down")
    assert hard["state"] == "queued"  # the novice may not take it
    run(domain.set_presence, novice["id"], "away")
    easy = route(team="network", subject="Other thing")
    assert easy["state"] == "queued"
    run(domain.set_presence, expert["id"], "online")
    assert {t["number"] for t in run(lambda s, c: domain.queue(s))} == set()
    assert load_of(sessions, expert["id"]) == 2 and load_of(sessions, novice["id"]) == 0


def test_manual_assignment_may_exceed_capacity_and_records_the_reason(team, agent, route, run, sessions, events):
    team("desk")
    a = agent("A", teams=["desk"], capacity=1)
    b = agent("B", teams=["desk"], capacity=1)
    t1, t2, t3 = route(team="desk"), route(team="desk"), route(team="desk")
    assert t3["state"] == "queued"
    run(domain.assign_manually, t3["number"], a["id"], "A knows the customer")
    assert load_of(sessions, a["id"]) == 2  # a supervisor may overload on purpose
    run(domain.assign_manually, t1["number"], b["id"], "rebalancing")
    assert (load_of(sessions, a["id"]), load_of(sessions, b["id"])) == (1, 2)
    history = run(lambda s, c: domain.routing_of(s, t1["number"]))
    assert [(x["agent_id"], x["manual"], x["reason"]) for x in history["assignments"]] == [
        (a["id"], False, "team queue"), (b["id"], True, "manual: rebalancing")]
    last = events("ticket_assigned")[-1]["data"]
    assert (last["manual"], last["previous_assignee"], last["assignee"]) == (True, f"agent-{a['id']}", f"agent-{b['id']}")
    with pytest.raises(NotFound):
        run(domain.assign_manually, "HD-999999", a["id"], "x")
    with pytest.raises(NotFound):
        run(domain.assign_manually, t2["number"], 999, "x")


def test_escalation_paths_next_tier_and_other_team(team, agent, route, run, sessions, events):
    team("experts", tier=2)
    team("desk", escalates_to="experts")
    l1 = agent("L1", teams=["desk"])
    l2 = agent("L2", teams=["experts"], tier=2)
    t = route(team="desk")
    assert t["agent_id"] == l1["id"]
    ctx_actor = "alan"
    with sessions.begin() as session:
        domain.escalate(session, t["number"], "needs a specialist", "manual", domain.Context(actor=ctx_actor))
    now = run(lambda s, c: domain.routing_of(s, t["number"]))
    assert (now["team"], now["tier"], now["agent_id"]) == ("experts", 2, l2["id"])
    assert (load_of(sessions, l1["id"]), load_of(sessions, l2["id"])) == (0, 1)
    escalated = events("ticket_escalated")[-1]["data"]
    assert (escalated["from_team"], escalated["to_team"], escalated["from_tier"], escalated["to_tier"],
            escalated["trigger"], escalated["actor"]) == ("desk", "experts", 1, 2, "manual", "alan")
    # experts have no path: the next tier within the team, where nobody works yet -> queued
    run(domain.escalate, t["number"], "still stuck", "manual")
    assert run(lambda s, c: domain.routing_of(s, t["number"]))["state"] == "queued"
    assert [e["type"] for e in events()][-2:] == ["ticket_escalated", "ticket_queued"]
    assert load_of(sessions, l2["id"]) == 0


def test_sla_breach_reopening_and_urgent_priority_escalate_automatically(ticket, team, agent, route, run, settings, sessions):
    team("desk")
    agent("L1", teams=["desk"])
    l2 = agent("L2", teams=["desk"], tier=2)
    l3 = agent("L3", teams=["desk"], tier=3)
    t = route(team="desk")
    run(lambda s, c: domain.sla_breached(s, {"ticket_number": t["number"], "metric": "first_response"}, settings, c))
    assert run(lambda s, c: domain.routing_of(s, t["number"]))["agent_id"] == l2["id"]

    reopen = route(team="desk")
    for _ in range(2):
        changed(run, settings, ticket(reopen["number"], status="resolved"), ("status", "open", "resolved"))
        changed(run, settings, ticket(reopen["number"], status="open"), ("status", "resolved", "open"))
    state = run(lambda s, c: domain.routing_of(s, reopen["number"]))
    assert (state["reopen_count"], state["tier"], state["agent_id"]) == (2, 2, l2["id"])
    assert state["escalations"][-1]["trigger"] == "reopened"

    urgent = route(team="desk")
    assert changed(run, settings, ticket(urgent["number"], priority="urgent"), ("priority", "normal", "urgent")) == "escalated"
    assert run(lambda s, c: domain.routing_of(s, urgent["number"]))["tier"] == 2
    # our own echo (tickets applying the priority routing decided) does nothing
    assert changed(run, settings, ticket(urgent["number"], priority="urgent"), ("priority", "normal", "urgent")) is None
    assert load_of(sessions, l3["id"]) == 0


def by_hand(run, number, ticket=None, actor="ada", **changes):
    """``route_by_hand`` as the gateway calls it for a ticket PATCH; returns (view, decisions)."""
    def call(session, ctx):
        ctx.actor = actor
        return domain.route_by_hand(session, number, changes, ticket, ctx), ctx.decided
    return run(call)


def decided(envelopes):
    for envelope in envelopes:
        CATALOGUE[envelope["type"]].data_model.model_validate(envelope["data"])  # each a valid event
    return [(e["type"], e["data"].get("assignee"), e["data"].get("team"), e["data"].get("tier"),
             e["data"]["sequence"], e["data"]["actor"]) for e in envelopes]


def test_an_assignee_set_by_hand_is_routings_decision_and_moves_the_load(ticket, team, agent, route, run, sessions):
    team("desk")
    a, b = agent("A", teams=["desk"]), agent("B", teams=["desk"], capacity=1)
    t = route(team="desk")
    assert t["agent_id"] == a["id"]  # decision 1
    view, decisions = by_hand(run, t["number"], assignee=f"agent-{b['id']}")
    assert (view["state"], view["agent_id"]) == ("assigned", b["id"])
    assert decided(decisions) == [("ticket_assigned", f"agent-{b['id']}", "desk", 1, 2, "ada")]
    assert decisions[0]["data"]["manual"] and decisions[0]["data"]["previous_assignee"] == f"agent-{a['id']}"
    assert (load_of(sessions, a["id"]), load_of(sessions, b["id"])) == (0, 1)
    view, decisions = by_hand(run, t["number"], assignee=f"agent-{b['id']}", team="desk")  # B again: beyond capacity is fine
    assert decided(decisions) == [("ticket_assigned", f"agent-{b['id']}", "desk", 1, 3, "ada")]
    assert load_of(sessions, b["id"]) == 1  # the same agent: no second load


def test_an_assignee_who_is_not_an_agent_is_recorded_without_load(ticket, team, agent, route, run, sessions):
    team("desk")
    a = agent("A", teams=["desk"])
    t = route(team="desk")
    view, decisions = by_hand(run, t["number"], assignee="alan")
    assert (view["state"], view["agent_id"], view["assignee"]) == ("assigned", None, "alan")
    assert decided(decisions) == [("ticket_assigned", "alan", "desk", 1, 2, "ada")]
    assert decisions[0]["data"]["agent"] is None
    assert load_of(sessions, a["id"]) == 0  # freed; and nothing waits for A
    view, decisions = by_hand(run, t["number"], team="billing")  # a team change keeps the assignee
    assert decided(decisions) == [("ticket_assigned", "alan", "billing", 1, 3, "ada")]


def test_unassigned_by_hand_a_ticket_waits_in_its_queue(ticket, team, agent, route, run, sessions):
    team("desk")
    a = agent("A", teams=["desk"])
    t = route(team="desk")
    view, decisions = by_hand(run, t["number"], assignee=None)
    assert (view["state"], view["agent_id"]) == ("queued", None)  # not given straight back to A
    assert decided(decisions)[0][:3] == ("ticket_queued", None, "desk")
    assert decisions[0]["data"]["previous_assignee"] == f"agent-{a['id']}"
    assert load_of(sessions, a["id"]) == 0


def test_a_waiting_ticket_moved_by_hand_goes_to_a_free_agent_of_its_new_team(ticket, team, agent, route, run):
    team("desk")
    team("billing")
    t = route(team="desk")  # nobody in desk: queued (decision 1)
    b = agent("B", teams=["billing"])
    view, decisions = by_hand(run, t["number"], team="billing", tier=1)
    assert (view["state"], view["agent_id"], view["team"]) == ("assigned", b["id"], "billing")
    assert decided(decisions) == [("ticket_assigned", f"agent-{b['id']}", "billing", 1, 2, "ada")]


def test_a_ticket_set_by_hand_before_routing_saw_it_is_not_routed_again(ticket, team, agent, route, run, sessions):
    team("desk")
    a = agent("A", teams=["desk"])
    new = ticket(team="desk")
    view, decisions = by_hand(run, new["number"], ticket=new, assignee="alan")
    assert decided(decisions) == [("ticket_assigned", "alan", "desk", 1, 1, "ada")]
    assert route(number=new["number"], team="desk") is None  # ticket_created arriving now: seen already
    assert load_of(sessions, a["id"]) == 0
    with pytest.raises(NotFound):
        by_hand(run, "HD-404404", assignee="alan")  # neither seen nor described


def test_only_status_and_priority_changes_reach_routing():
    decided_only = [{"field": "assignee", "old": None, "new": "agent-1"}, {"field": "tier", "old": 1, "new": 2}]
    assert not domain.reacts_to({"actor": "routing", "changes": decided_only})
    assert not domain.reacts_to({"actor": "alan", "changes": decided_only})  # also a decision, made by hand
    assert domain.reacts_to({"changes": decided_only + [{"field": "status", "old": "new", "new": "open"}]})
    assert domain.reacts_to({"changes": [{"field": "priority", "old": "normal", "new": "urgent"}]})
    assert not domain.reacts_to({"changes": [{"field": "tags", "old": [], "new": ["vip"]}]})


def test_resolved_before_created_leaves_a_tombstone(ticket, team, agent, route, run, settings, sessions):
    team("desk")
    a = agent("A", teams=["desk"])
    late = ticket(status="resolved", team="desk")
    changed(run, settings, late, ("status", "open", "resolved"))
    assert route(number=late["number"], team="desk") is None
    assert load_of(sessions, a["id"]) == 0


def test_ticket_routed_once_and_unknown_team_queues(route, run, events, team):
    first = route(number="HD-777777", team="nowhere")
    assert first["state"] == "queued"
    assert route(number="HD-777777", team="nowhere") is None
    assert events("ticket_queued")[-1]["data"]["reason"] == "unknown team nowhere"
    assert route(team=None)["state"] == "queued"


def test_management_validation_and_rule_order(team, agent, rule, sessions, run):
    team("desk")
    with pytest.raises(Conflict):
        team("desk")
    with pytest.raises(ValidationFailed):
        team("loop", escalates_to="loop")
    with pytest.raises(ValidationFailed):
        agent("X", teams=["ghosts"])
    agent("Y", teams=["desk"])
    with pytest.raises(Conflict):
        agent("Y")
    rule("one", team="desk")
    rule("two", team="desk")
    with sessions.begin() as session:
        domain.add_rule(session, NewRule.model_validate({"name": "zero", "position": 1, "actions": {"tier": 2}}))
    with sessions() as session:
        assert [(r["name"], r["position"]) for r in domain.list_rules(session)] == [("zero", 1), ("one", 2), ("two", 3)]
    with sessions.begin() as session:
        domain.delete_rule(session, domain.list_rules(session)[0]["id"])
    with sessions() as session:
        assert [(r["name"], r["position"]) for r in domain.list_rules(session)] == [("one", 1), ("two", 2)]
    _rules_edited_and_moved(sessions, rule)
    run(domain.update_team, "desk", TeamChanges(strategy="round_robin"))
    with sessions() as session:
        assert domain.list_teams(session)[0]["strategy"] == "round_robin"
        assert session.scalar(select(Assignment.id)) is None


def test_both_sla_clocks_breaching_escalate_once_per_breach_episode(team, agent, route, run, settings, sessions, events):
    team("desk")
    agent("L1", teams=["desk"])
    l2 = agent("L2", teams=["desk"], tier=2)
    l3 = agent("L3", teams=["desk"], tier=3)
    t = route(team="desk")

    def breach(metric):
        return run(lambda s, c: domain.sla_breached(s, {"ticket_number": t["number"], "metric": metric}, settings, c))

    assert breach("first_response")["tier"] == 2
    assert breach("resolution") is None  # the same episode: the ticket is where the first breach put it
    assert breach("first_response") is None  # a repeat (another event id) neither
    state = run(lambda s, c: domain.routing_of(s, t["number"]))
    assert (state["tier"], state["agent_id"], [e["trigger"] for e in state["escalations"]]) == (
        2, l2["id"], ["sla_breach"])
    assert len(events("ticket_escalated")) == 1
    # a new placement (an agent escalates by hand) starts a new episode: a breach there escalates again
    run(domain.escalate, t["number"], "needs tier 3 after all", "manual")
    assert breach("resolution")["tier"] == 4
    assert load_of(sessions, l3["id"]) == 0


@pytest.mark.parametrize("field", ["name", "email", "languages", "skills", "teams", "tier", "capacity"])
def test_an_agent_field_that_must_have_a_value_cannot_be_cleared(team, agent, run, sessions, field):
    """A null used to reach the database's NOT NULL and answer 500 (found by the schemathesis fuzzer)."""
    team("desk")
    a = agent("A", teams=["desk"])
    with pytest.raises(ValidationFailed) as caught:
        run(domain.update_agent, a["id"], AgentChanges.model_validate({field: None}))
    assert caught.value.details[0] == {"field": field, "code": "null_not_allowed", "message": "give a value"}
    assert run(domain.update_agent, a["id"], AgentChanges.model_validate({"working_hours": None}))["working_hours"] is None


@pytest.mark.parametrize("field", ["tier", "strategy"])
def test_a_team_field_that_must_have_a_value_cannot_be_cleared(team, run, field):
    team("desk")
    with pytest.raises(ValidationFailed) as caught:
        run(lambda s, c: domain.update_team(s, "desk", TeamChanges.model_validate({field: None}), c))
    assert caught.value.details[0]["code"] == "null_not_allowed"
    assert run(lambda s, c: domain.update_team(s, "desk", TeamChanges.model_validate({"description": None}), c))


def _rules_edited_and_moved(sessions, rule):
    """A rule changed in place (only what is given; conditions and actions replaced whole) and moved: the
    rules in between shift by one, the order stays 1..n; a move beyond the last is last."""
    from helpdesk_common.contracts.routing import RuleChanges

    def change(which, **changes):
        with sessions.begin() as session:
            rule = next(r for r in domain.list_rules(session) if r["name"] == which)
            return domain.update_rule(session, rule["id"], RuleChanges.model_validate(changes))

    def order():
        with sessions() as session:
            return [(r["name"], r["position"]) for r in domain.list_rules(session)]

    rule("three", team="desk")
    changed = change("two", name="deux", enabled=False, conditions={"words": ["vpn"]}, actions={"tier": 2})
    assert (changed["name"], changed["enabled"], changed["conditions"], changed["actions"]) == (
        "deux", False, {"words": ["vpn"]}, {"tier": 2})
    assert change("deux", enabled=True)["conditions"] == {"words": ["vpn"]}  # the rest left as it was
    change("three", position=1)
    assert order() == [("three", 1), ("one", 2), ("deux", 3)]
    change("three", position=99)
    assert order() == [("one", 1), ("deux", 2), ("three", 3)]
    change("one", position=2)
    assert order() == [("deux", 1), ("one", 2), ("three", 3)]
    with pytest.raises(ValidationFailed):
        change("one", actions={"team": "ghosts"})
    with pytest.raises(ValidationFailed):
        change("one", name=None)
    with pytest.raises(NotFound):
        with sessions.begin() as session:
            domain.update_rule(session, 999_999, RuleChanges(enabled=False))
    assert order() == [("deux", 1), ("one", 2), ("three", 3)]
