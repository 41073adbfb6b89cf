"""Routing end to end: agents with different skills, languages and capacities created through the API;
tickets in English, Dutch and Swedish about different products each reach a right agent, loads stay
within capacity, and a waiting ticket is assigned as soon as an agent frees up (a ticket resolved,
capacity raised). Every process runs; SQLite and PostgreSQL."""
import uuid

import pytest

from stack import EventRecorder, new_ticket, wait_for

pytestmark = pytest.mark.e2e

TIMEOUT = 30


@pytest.fixture
def desk(platform, api):
    """The API calls the test makes, each checked for success."""
    suffix = uuid.uuid4().hex[:6]

    class Desk:
        team = f"products-{suffix}"

        def post(self, path, body, status=201):
            response = api.post(f"{platform.url}/api/v1{path}", json=body)
            assert response.status_code == status, response.text
            return response.json()

        def patch(self, path, body):
            response = api.patch(f"{platform.url}/api/v1{path}", json=body)
            assert response.status_code == 200, response.text
            return response.json()

        def get(self, path, **params):
            response = api.get(f"{platform.url}/api/v1{path}", params=params)
            assert response.status_code == 200, response.text
            return response.json()

        def agent(self, name, languages, skills, capacity):
            return self.post("/agents", {"name": name, "email": f"{name.lower()}-{suffix}@example.com",
                                         "languages": languages, "skills": skills, "teams": [self.team],
                                         "capacity": capacity, "presence": "online"})

        def ticket(self, subject, description, language, **fields):
            return self.post("/tickets", new_ticket(subject=subject, description=description, language=language,
                                                    **fields))["number"]

        def assignee_of(self, number):
            """Wait until routing's decision reached the ticket; its assignee."""
            return wait_for(lambda: self.get(f"/tickets/{number}")["assignee"], timeout=TIMEOUT,
                            what=f"{number} to be assigned")

        def queued(self, number):
            return wait_for(lambda: any(t["number"] == number for t in self.get("/routing/queue", team=self.team)),
                            timeout=TIMEOUT, what=f"{number} to wait in the queue")

        def loads_within_capacity(self):
            agents = [agent for agent in self.get("/agents") if self.team in agent["teams"]]
            for agent in agents:
                assert 0 <= agent["load"] <= agent["capacity"], agent
                open_tickets = [t for t in self.get("/tickets", assignee=agent["assignee"], limit=100)["items"]
                                if t["status"] not in ("resolved", "closed")]
                assert len(open_tickets) == agent["load"], (agent, open_tickets)
            return {agent["name"]: agent["load"] for agent in agents}

    return Desk()


def test_tickets_in_three_languages_reach_the_right_agents_within_capacity(desk):
    desk.post("/teams", {"name": desk.team, "strategy": "skills_and_load"})
    for name, words, skills in (("printers", ["printer", "skrivare", "skrivaren"], {"printers": 2}),
                                ("vpn", ["vpn"], {"vpn": 3}),
                                ("billing", ["invoice", "faktura", "fakturan", "factuur"], {"billing": 2})):
        desk.post("/routing/rules", {"name": f"{name}-{desk.team}", "conditions": {"words": words},
                                     "actions": {"team": desk.team, "required_skills": skills}})
    anna = desk.agent("Anna", ["sv", "en"], {"printers": 3}, capacity=1)
    piet = desk.agent("Piet", ["nl", "en"], {"vpn": 4, "printers": 2}, capacity=2)
    erik = desk.agent("Erik", ["sv"], {"billing": 3}, capacity=1)
    emma = desk.agent("Emma", ["en"], {"vpn": 3, "billing": 2}, capacity=1)
    assert [a["load"] for a in (anna, piet, erik, emma)] == [0, 0, 0, 0]

    # one at a time, so that "least loaded" is deterministic
    sv_printer = desk.ticket("Skrivaren", "Min skrivare skriver inte ut sedan i morse.", "sv")
    assert desk.assignee_of(sv_printer) == anna["assignee"]  # the only Swedish speaker who knows printers
    nl_vpn = desk.ticket("VPN", "Mijn VPN werkt niet sinds maandag.", "nl")
    assert desk.assignee_of(nl_vpn) == piet["assignee"]  # the only Dutch speaker
    sv_billing = desk.ticket("Fakturan", "Fakturan har fel belopp.", "sv")
    assert desk.assignee_of(sv_billing) == erik["assignee"]
    en_vpn = desk.ticket("VPN down", "The VPN does not connect since this morning.", "en")
    assert desk.assignee_of(en_vpn) == emma["assignee"]  # Piet knows VPN too, but carries one already
    nl_printer = desk.ticket("Printer", "Mijn printer drukt niets af.", "nl")
    assert desk.assignee_of(nl_printer) == piet["assignee"]
    assert desk.loads_within_capacity() == {"Anna": 1, "Piet": 2, "Erik": 1, "Emma": 1}

    # Anna is full: the next Swedish printer ticket waits, and is hers as soon as she resolves one
    waiting = desk.ticket("Skrivaren igen", "Skrivaren på plan 2 fungerar inte.", "sv")
    desk.queued(waiting)
    assert desk.get(f"/tickets/{waiting}")["assignee"] is None
    desk.patch(f"/tickets/{sv_printer}", {"status": "resolved"})
    assert desk.assignee_of(waiting) == anna["assignee"]

    # Emma is full: an English invoice waits until her capacity is raised
    en_billing = desk.ticket("Invoice", "The invoice shows the wrong amount.", "en", priority="high")
    desk.queued(en_billing)
    assert desk.patch(f"/agents/{emma['id']}", {"capacity": 2})["capacity"] == 2
    assert desk.assignee_of(en_billing) == emma["assignee"]
    assert desk.loads_within_capacity() == {"Anna": 1, "Piet": 2, "Erik": 1, "Emma": 2}

    # the decisions are in each ticket's history, and the SLA clocks run on the ticket
    history = desk.get(f"/tickets/{waiting}/history")
    assert any(e["field"] == "ticket_queued" for e in history)
    assert any(e["field"] == "assignee" and e["new"] == anna["assignee"] and e["actor"] == "routing"
               for e in history)
    ticket = desk.get(f"/tickets/{en_billing}")
    assert ticket["sla"]["policy"] == "high" and ticket["sla"]["first_response_due_at"]
    assert ticket["sla"]["paused"] is False and ticket["sla"]["breached"] is False


@pytest.fixture
def decisions_heard(platform):
    """Routing's events, as an integrator hears them."""
    with EventRecorder(platform.amqp_uri, source="routing") as recorder:
        yield recorder


def test_assignee_team_and_tier_set_through_a_ticket_patch_are_routings_decisions(desk, api, platform,
                                                                                    decisions_heard):
    """Routing is the one writer of assignee, team and tier: a PATCH is carried out as its decision, shown at
    once in the answer, recorded as the person's in the history, and never undone by a decision that was
    made earlier and arrives later."""
    desk.post("/teams", {"name": desk.team, "strategy": "least_loaded"})
    ann = desk.agent("Ann", ["en"], {}, 5)
    bob = desk.agent("Bob", ["en"], {}, 1)
    number = desk.ticket("Stapler", "It jams.", "en", team=desk.team)
    first = desk.assignee_of(number)
    other = bob if first == ann["assignee"] else ann

    moved = desk.patch(f"/tickets/{number}", {"assignee": other["assignee"], "priority": "high"})
    assert (moved["assignee"], moved["priority"]) == (other["assignee"], "high")  # at once, in the answer
    routing = desk.get(f"/tickets/{number}/routing")
    assert (routing["state"], routing["assignee"]) == ("assigned", other["assignee"])
    assert routing["assignments"][-1]["manual"] and routing["assignments"][-1]["actor"] == "bootstrap"
    loads = {a["assignee"]: a["load"] for a in desk.get("/agents") if desk.team in a["teams"]}
    assert (loads[first], loads[other["assignee"]]) == (0, 1)

    unassigned = desk.patch(f"/tickets/{number}", {"assignee": None})
    assert unassigned["assignee"] is None
    # routing's decision: back to the team's queue, taken from the agent who had it (a sweep may give it out later)
    (queued,) = wait_for(lambda: [e for e in decisions_heard.of("ticket_queued", number)
                                  if e["data"]["actor"] == "bootstrap"], timeout=TIMEOUT, what="the unassignment")
    assert (queued["data"]["team"], queued["data"]["previous_assignee"]) == (desk.team, other["assignee"])

    history = desk.get(f"/tickets/{number}/history")
    by_hand = [(e["old"], e["new"]) for e in history if e["field"] == "assignee" and e["actor"] == "bootstrap"]
    assert by_hand == [(first, other["assignee"]), (other["assignee"], None)]
    decisions = decisions_heard.wait("ticket_assigned", number, count=2)
    assert decisions[-1]["schema_version"] == 2 and decisions[-1]["data"]["actor"] == "bootstrap"
    assert [d["data"]["sequence"] for d in decisions] == sorted(d["data"]["sequence"] for d in decisions)

    # set by hand right after creation, before (or while) routing decides about the new ticket
    racing = desk.ticket("Monitor", "It flickers.", "en", team=desk.team)
    patched = desk.patch(f"/tickets/{racing}", {"assignee": "outside-contractor", "team": "facilities", "tier": 2})
    assert (patched["assignee"], patched["team"], patched["tier"]) == ("outside-contractor", "facilities", 2)
    wait_for(lambda: desk.get(f"/tickets/{racing}/routing")["assignee"] == "outside-contractor", timeout=TIMEOUT,
             what="routing to hold the assignee set by hand")
    decisions_heard.wait("ticket_assigned", racing)  # the decision made by hand

    def every_decision_applied():  # each decision heard so far is in the ticket's history, applied or overtaken
        kinds_heard = ("ticket_assigned", "ticket_queued", "ticket_escalated")
        heard = sum(len(decisions_heard.of(kind, racing)) for kind in kinds_heard)
        kinds = [e["field"] for e in desk.get(f"/tickets/{racing}/history")]
        return heard == sum(kinds.count(kind) for kind in ("ticket_assigned", "ticket_queued", "ticket_escalated"))

    wait_for(every_decision_applied, timeout=TIMEOUT, what="every routing decision about the ticket applied")
    final = desk.get(f"/tickets/{racing}")
    assert (final["assignee"], final["team"], final["tier"]) == ("outside-contractor", "facilities", 2)
    assert desk.get(f"/agents/{ann['id']}")["load"] + desk.get(f"/agents/{bob['id']}")["load"] <= 1

    refused = api.patch(f"{platform.url}/api/v1/tickets/{number}", json={"tier": None, "status": "pending"})
    assert refused.status_code == 422 and refused.json()["error"]["details"][0]["field"] == "tier"
    assert desk.get(f"/tickets/{number}")["status"] != "pending"  # bad input changes nothing
