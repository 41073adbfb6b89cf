"""SLA clocks with a controllable clock: every moment is passed explicitly, nothing sleeps.

The calendar is Amsterdam's office week (Monday to Friday, 09:00-17:00) with Christmas Day and New
Year's Day off; December 2026: the 24th is a Thursday, the 25th (a holiday) a Friday, the 28th a Monday.
"""
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete

from helpdesk_common.contracts.tickets import NewMessage, TicketChanges, TicketView, Viewer
from helpdesk_common.events import CATALOGUE
from helpdesk_tickets import domain, sla
from helpdesk_tickets.models import SlaClock
from helpdesk_tickets.sla import SlaError, SlaPolicies
from helpdesk_tickets.workflow import Workflow

AMS = ZoneInfo("Europe/Amsterdam")
HOUR = 3600
POLICIES = {
    "warning_threshold": 0.8,
    "calendar": {"timezone": "Europe/Amsterdam",
                 "weekly": {day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
                 "holidays": ["2026-12-25", "2027-01-01"]},
    "policies": [
        {"name": "high", "priority": "high", "first_response": "4h", "resolution": "16h"},
        {"name": "normal", "priority": "normal", "first_response": "8h", "resolution": "40h"},
        {"name": "urgent", "priority": "urgent", "first_response": "1h", "resolution": "4h",
         "warning_threshold": 0.5},
        {"name": "vip-high", "team": "vip", "priority": "high", "first_response": "30m", "resolution": "2h"},
    ],
}
AGENT = Viewer(actor="alan", role="agent")
CUSTOMER = Viewer(actor="carol", role="customer", email="carol@example.com")


def at(day, hour, minute=0, month=12, year=2026):
    """A moment on Amsterdam's wall clock."""
    return datetime(year, month, day, hour, minute, tzinfo=AMS)


@pytest.fixture
def rules():
    return domain.Rules(workflow=Workflow.load(), number_format="T{year}-{seq:05d}",
                        sla=SlaPolicies.from_dict(POLICIES))


@pytest.fixture
def desk(sessions, rules, new_ticket):
    """The ticket operations, each in its own transaction at an explicit moment."""

    class Desk:
        def open(self, when, **fields):
            with sessions.begin() as session:
                view, _ = domain.open_ticket(session, new_ticket(**{"priority": "high", **fields}),
                                             AGENT, rules, now=when)
            return view

        def change(self, number, when, **changes):
            with sessions.begin() as session:
                return domain.change_ticket(session, number, TicketChanges.model_validate(changes), AGENT, rules,
                                            now=when)

        def reply(self, number, when, viewer=AGENT, visibility="public"):
            with sessions.begin() as session:
                domain.add_message(session, number, NewMessage(body="Hello", visibility=visibility), viewer,
                                   rules, now=when)

        def view(self, number, when):
            with sessions() as session:
                return domain.ticket_view(domain.find_ticket(session, number, AGENT), rules, when)

        def check(self, when):
            with sessions.begin() as session:
                return domain.check_sla(session, rules, when)

        def history(self, number):
            with sessions() as session:
                return domain.history(session, number, AGENT)

        def routing_escalates(self, number, when):
            """What routing does on sla_breached: escalate to the next tier (its ticket_escalated event)."""
            envelope = {"id": str(uuid.uuid4()), "type": "ticket_escalated", "source": "routing",
                        "data": {"ticket_number": number, "from_tier": 1, "to_tier": 2, "trigger": "sla_breach",
                                 "reason": "SLA first_response breached", "actor": "routing",
                                 "escalated_at": when.isoformat()}}
            with sessions.begin() as session:
                return domain.apply_routing(session, envelope, rules, now=when)

    return Desk()


def utc(moment):
    return moment.astimezone(timezone.utc).isoformat()


def test_due_times_skip_the_weekend_and_the_holiday_then_warning_breach_and_escalation(desk, outbox_rows):
    ticket = desk.open(at(24, 15))  # Thursday 15:00, the day before Christmas
    number = ticket["number"]
    # first response, 4h: Thursday 15-17 (2h), Friday is Christmas, the weekend, Monday 09-11 (2h)
    # resolution, 16h: Thursday 2h, Monday 8h, Tuesday 09-15 (6h)
    assert ticket["sla"] == {
        "policy": "high", "paused": False, "breached": False,
        "first_response_due_at": utc(at(28, 11)), "first_response_remaining_seconds": 4 * HOUR,
        "first_response_breached": False,
        "resolution_due_at": utc(at(29, 15)), "resolution_remaining_seconds": 16 * HOUR,
        "resolution_breached": False,
    }
    TicketView.model_validate(ticket)  # the contract accepts it
    # on Saturday two business hours have passed, whatever the wall clock says
    saturday = desk.view(number, at(26, 12))["sla"]
    assert saturday["first_response_remaining_seconds"] == 2 * HOUR
    assert saturday["resolution_remaining_seconds"] == 14 * HOUR

    assert desk.check(at(26, 12)) == []
    assert desk.check(at(28, 10, 11)) == []  # the warning is due at 80%: 3h12m, Monday 10:12
    assert desk.check(at(28, 10, 12)) == [(number, "sla_warning", "first_response")]
    assert desk.check(at(28, 10, 30)) == []  # once only
    assert desk.check(at(28, 11)) == [(number, "sla_breached", "first_response")]
    assert desk.check(at(28, 11, 5)) == []

    late = desk.view(number, at(28, 12))["sla"]
    assert late["first_response_breached"] and late["breached"] and not late["resolution_breached"]
    assert late["first_response_remaining_seconds"] == -HOUR

    warning, breach = outbox_rows("sla_warning"), outbox_rows("sla_breached")
    assert len(warning) == len(breach) == 1
    data = CATALOGUE["sla_warning"].data_model.model_validate(warning[0].envelope["data"])
    assert (data.ticket_number, data.metric, data.policy, data.threshold) == (number, "first_response", "high", 0.8)
    assert data.target_seconds == 4 * HOUR and data.elapsed_seconds == pytest.approx(3.2 * HOUR)
    assert data.due_at == at(28, 11)
    data = CATALOGUE["sla_breached"].data_model.model_validate(breach[0].envelope["data"])
    assert (data.metric, data.elapsed_seconds, data.remaining_seconds) == ("first_response", 4 * HOUR, 0)
    assert breach[0].envelope["source"] == "tickets" and breach[0].envelope["subject"] == number

    # routing escalates on the breach: the ticket moves to tier 2
    assert desk.routing_escalates(number, at(28, 11, 1))["tier"] == 2
    # a timer that was down for a day catches up: warning then breach, in that order
    assert desk.check(at(29, 16)) == [(number, "sla_warning", "resolution"), (number, "sla_breached", "resolution")]
    assert desk.check(at(30, 10)) == []

    history = desk.history(number)
    story = [(e["field"], e["actor"]) for e in history if e["field"] not in ("created",)]
    assert story == [("sla_warning", "sla"), ("sla_breached", "sla"), ("tier", "routing"),
                     ("ticket_escalated", "routing"), ("sla_warning", "sla"), ("sla_breached", "sla")]
    breached = next(e for e in history if e["field"] == "sla_breached")
    assert breached["at"] == utc(at(28, 11))
    assert breached["new"]["metric"] == "first_response" and breached["new"]["due_at"] == utc(at(28, 11))
    tier = next(e for e in history if e["field"] == "tier")
    assert (tier["old"], tier["new"]) == (1, 2)
    assert next(e for e in history if e["field"] == "ticket_escalated")["new"]["trigger"] == "sla_breach"


def test_the_clock_pauses_while_pending_and_the_due_times_move_by_the_paused_business_time(desk, outbox_rows):
    number = desk.open(at(14, 9))["number"]  # Monday 09:00
    before = desk.view(number, at(14, 9))["sla"]
    assert before["first_response_due_at"] == utc(at(14, 13))
    assert before["resolution_due_at"] == utc(at(15, 17))

    desk.change(number, at(14, 10), status="pending")  # waiting on the customer after 1h
    paused = desk.view(number, at(15, 10))["sla"]
    assert paused["paused"] is True
    assert paused["first_response_remaining_seconds"] == 3 * HOUR  # frozen
    assert paused["resolution_remaining_seconds"] == 15 * HOUR
    assert paused["first_response_due_at"] == utc(at(14, 13))  # as it stood; it moves when the clock runs
    assert desk.check(at(14, 16)) == [] and desk.check(at(15, 10)) == []  # past the old due time: nothing

    # the customer answers on Tuesday 11:00: the ticket is open again, the clock runs again
    desk.reply(number, at(15, 11), viewer=CUSTOMER)
    resumed = desk.view(number, at(15, 11))["sla"]
    assert resumed["paused"] is False
    # paused: Monday 10-17 (7h) and Tuesday 09-11 (2h) = 9 business hours; both due times move by that
    assert resumed["first_response_due_at"] == utc(at(15, 14))  # Monday 13:00 + 9h
    assert resumed["resolution_due_at"] == utc(at(17, 10))  # Tuesday 17:00 + 9h = Thursday 10:00
    assert resumed["first_response_remaining_seconds"] == 3 * HOUR

    # an agent's public reply meets the first-response target; no warning ever comes for it
    desk.reply(number, at(15, 12))
    met = desk.view(number, at(16, 9))["sla"]
    # Monday 09-10 and Tuesday 11-12: 2h of the 4h used
    assert met["first_response_remaining_seconds"] == 2 * HOUR and not met["first_response_breached"]
    assert desk.check(at(15, 16)) == []

    # resolved on Tuesday 13:00 after 1h + 2h of work: the resolution clock stops
    desk.change(number, at(15, 13), status="resolved")
    assert desk.check(at(31, 16)) == []
    stopped = desk.view(number, at(31, 16))["sla"]
    assert stopped["resolution_remaining_seconds"] == 13 * HOUR and not stopped["breached"]

    # reopened on Wednesday 09:00: the time it stood resolved (Tuesday 13-17) does not count
    desk.change(number, at(16, 9), status="open")
    reopened = desk.view(number, at(16, 9))["sla"]
    assert reopened["resolution_due_at"] == utc(at(17, 14))  # 13h left: Wednesday 8h, Thursday 09-14
    # 80% of 16h = 12.8h: 3h before, Wednesday 8h, Thursday 1h48m
    assert desk.check(at(17, 10, 47)) == []
    assert desk.check(at(17, 10, 48)) == [(number, "sla_warning", "resolution")]
    assert desk.check(at(17, 14)) == [(number, "sla_breached", "resolution")]
    assert [r.envelope["data"]["metric"] for r in outbox_rows("sla_breached")] == ["resolution"]


def test_a_ticket_pending_from_its_first_minute_has_its_clock_paused_across_the_weekend(desk):
    number = desk.open(at(18, 16))["number"]  # Friday 16:00
    desk.change(number, at(18, 16), status="pending")
    desk.change(number, at(22, 9), status="open")  # back on Tuesday 09:00: Monday counted as paused
    assert desk.view(number, at(22, 9))["sla"]["first_response_due_at"] == utc(at(22, 13))


def test_the_policy_follows_priority_and_team(desk):
    number = desk.open(at(14, 9), priority="normal")["number"]
    assert desk.view(number, at(14, 9))["sla"]["first_response_due_at"] == utc(at(14, 17))
    desk.change(number, at(14, 10), priority="urgent")  # 1h from the start: already past its 50% warning
    view = desk.view(number, at(14, 10))["sla"]
    assert (view["policy"], view["first_response_due_at"]) == ("urgent", utc(at(14, 10)))
    assert desk.check(at(14, 10)) == [(number, "sla_warning", "first_response"),
                                      (number, "sla_breached", "first_response")]
    assert desk.check(at(14, 11)) == [(number, "sla_warning", "resolution")]  # 50% of 4h
    # a team policy is more specific than a priority policy
    vip = desk.open(at(14, 9), team="vip")
    assert (vip["sla"]["policy"], vip["sla"]["first_response_due_at"]) == ("vip-high", utc(at(14, 9, 30)))


def test_a_priority_no_policy_covers_has_no_clocks(desk):
    ticket = desk.open(at(14, 9), priority="low")
    assert ticket["sla"] is None
    assert desk.view(ticket["number"], at(14, 9))["sla"] is None
    assert desk.check(at(31, 9)) == []
    # a policy that starts to apply counts from the ticket's opening
    assert desk.change(ticket["number"], at(14, 10), priority="high")["sla"]["first_response_due_at"] == utc(at(14, 13))


def test_without_sla_policies_no_clocks_are_kept(sessions, new_ticket):
    rules = domain.Rules(workflow=Workflow.load())
    with sessions.begin() as session:
        ticket, _ = domain.open_ticket(session, new_ticket(priority="urgent"), AGENT, rules)
    assert ticket["sla"] is None
    with sessions.begin() as session:
        assert domain.check_sla(session, rules, datetime.now(timezone.utc) + timedelta(days=365)) == []


def test_many_tickets_opened_in_one_batch_each_get_their_clocks(sessions, rules, new_ticket, admin):
    with sessions.begin() as session:
        outcomes = domain.open_tickets(session, [(new_ticket(priority=p), admin, None)
                                                 for p in ("high", "normal", "high", "low")], rules, now=at(14, 9))
    assert [o[0]["sla"] and o[0]["sla"]["policy"] for o in outcomes] == ["high", "normal", "high", None]
    with sessions.begin() as session:
        announced = domain.check_sla(session, rules, at(14, 13))
    assert sorted(announced) == sorted([(outcomes[i][0]["number"], kind, "first_response")
                                        for i in (0, 2) for kind in ("sla_warning", "sla_breached")])


def test_the_built_in_policies_load_and_cover_every_priority():
    policies = SlaPolicies.load()
    for priority in ("low", "normal", "high", "urgent"):
        policy = policies.policy_for(priority)
        assert policy is not None and policy.targets["first_response"] < policy.targets["resolution"]
    assert 0 < policies.warning_threshold <= 1


@pytest.mark.parametrize("change, message", [
    ({"policies": []}, "non-empty list"),
    ({"warning_threshold": 1.5}, "at most 1"),
    ({"calendar": {"timezone": "Mars/Olympus"}}, "time zone"),
    ({"calendar": {"timezone": "UTC", "weekly": {}}}, "no working hours"),
    ({"policies": [{"name": "x", "priority": "high", "first_response": "soon", "resolution": "4h"}]}, "duration"),
    ({"policies": [{"name": "x", "priority": "asap", "first_response": "1h", "resolution": "4h"}]}, "priority"),
    ({"policies": [{"name": "x", "priority": "high", "first_response": "1h"}]}, "missing"),
    ({"policies": [{"name": "x", "priority": "high", "first_response": "1h", "resolution": "2h",
                    "calendar": "nights"}]}, "unknown calendar"),
    ({"policies": [{"name": "x", "priority": "high", "first_response": "1h", "resolution": "2h", "colour": 1}]},
     "unknown keys"),
])
def test_a_mistake_in_the_sla_file_is_refused_clearly(change, message):
    with pytest.raises(SlaError, match=message):
        SlaPolicies.from_dict({**POLICIES, **change})


@pytest.mark.parametrize("text, seconds", [("4h", 14400), ("1h30m", 5400), ("45m", 2700), ("90s", 90),
                                           (2, 7200), (0.5, 1800)])
def test_durations(text, seconds):
    assert sla.parse_duration(text, "x") == seconds


def test_the_sla_file_is_read_from_the_config(tmp_path):
    from helpdesk_tickets.dependencies import TicketRules

    path = tmp_path / "sla.yaml"
    path.write_text("policies:\n  - {name: all, first_response: 2h, resolution: 1h30m}\n")

    class Container:
        config = {"SLA_FILE": str(path)}

    provider = TicketRules()
    provider.container = Container()
    provider.setup()
    policy = provider.rules.sla.policy_for("low", "any")
    assert (policy.name, policy.targets) == ("all", {"first_response": 7200, "resolution": 5400})


def test_tickets_older_than_the_sla_clocks_get_clocks_counted_from_their_opening(desk, sessions, rules):
    """Tickets opened before the clocks were deployed have none: the backfill gives them their clocks at
    deploy (not at their next change), from when they opened; resolved ones are left alone."""
    waiting = desk.open(at(14, 9))["number"]  # Monday 09:00, high: first response due 13:00
    answered = desk.open(at(14, 9))["number"]
    desk.reply(answered, at(14, 10))
    done = desk.open(at(14, 9))["number"]
    desk.change(done, at(14, 11), status="resolved")
    with sessions.begin() as session:  # as they were before the SLA clocks existed
        session.execute(delete(SlaClock))
    assert desk.view(waiting, at(15, 9))["sla"] is None
    assert desk.check(at(15, 9)) == []  # no clock, no breach: the gap

    with sessions.begin() as session:  # deploy, Tuesday 09:00
        assert domain.backfill_sla_clocks(session, rules, at(15, 9)) == (2, None)
    with sessions.begin() as session:  # once only
        assert domain.backfill_sla_clocks(session, rules, at(15, 9, 1)) == (0, None)
    view = desk.view(waiting, at(15, 9))["sla"]
    assert (view["policy"], view["first_response_due_at"]) == ("high", utc(at(14, 13)))
    assert view["first_response_breached"] and view["resolution_due_at"] == utc(at(15, 17))
    replied = desk.view(answered, at(15, 9))["sla"]
    assert not replied["first_response_breached"] and replied["first_response_remaining_seconds"] == 3 * HOUR
    assert desk.view(done, at(15, 9))["sla"] is None
    assert desk.check(at(15, 9)) == [(waiting, "sla_warning", "first_response"),
                                     (waiting, "sla_breached", "first_response")]


def test_the_backfill_works_in_pages(desk, sessions, rules):
    numbers = [desk.open(at(14, 9))["number"] for _ in range(5)]
    with sessions.begin() as session:
        session.execute(delete(SlaClock))
    after, pages = 0, 0
    while after is not None:
        with sessions.begin() as session:
            clocked, after = domain.backfill_sla_clocks(session, rules, at(14, 10), after_id=after, limit=2)
        pages += 1
    assert pages == 3
    assert all(desk.view(n, at(14, 10))["sla"]["policy"] == "high" for n in numbers)
