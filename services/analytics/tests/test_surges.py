"""The surge detector and the grouping of similar tickets, as plain rules on a synthetic month (no broker)."""
from datetime import timedelta

import pytest

from helpdesk_analytics import surges
from surge_month import MONTH, MONTH_START, PHRASES, inject, quiet, terms

STEP = timedelta(minutes=5)  # how often the service's timer looks (it looks every minute: coarser is harder)
SURGE_AT = MONTH_START + timedelta(days=9, hours=10, minutes=7)  # a Wednesday morning, office hours


def _alarms(arrivals, start, end):
    index, now, found = surges.Arrivals(arrivals), start, []
    while now < end:
        found.extend((now, surge) for surge in surges.detect(index, now))
        now += STEP
    return found


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_quiet_month_raises_no_alarm(seed):
    assert _alarms(quiet(seed), MONTH_START, MONTH_START + MONTH) == []


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_injected_surge_is_found_within_one_window(seed):
    arrivals, injected = inject(quiet(seed), SURGE_AT, count=20, minutes=40)
    alarms = _alarms(arrivals, MONTH_START, MONTH_START + MONTH)
    assert alarms, "the surge was not found"
    first_at, first = alarms[0]
    assert SURGE_AT < first_at <= SURGE_AT + surges.WINDOW
    # every alarm of the month is about the surge: without the injected tickets it would be none
    for at, surge in alarms:
        assert SURGE_AT <= at <= SURGE_AT + 2 * surges.WINDOW
        assert not surges.is_surge(len(set(surge.tickets) - injected), surge.baseline), surge


def test_the_surge_of_a_new_problem_is_named_by_its_wording():
    arrivals, injected = inject(quiet(1), SURGE_AT, count=20, minutes=40)
    found = surges.detect(surges.Arrivals(arrivals), SURGE_AT + timedelta(minutes=45))
    wording = [s for s in found if s.dimension == surges.WORDING]
    assert wording and {"checkout", "error", "503"} >= set(wording[0].value.split())
    assert set(wording[0].tickets) <= injected and len(wording[0].tickets) >= 15
    assert wording[0].baseline == 0


def test_the_usual_monday_morning_is_no_surge():
    """Busy office hours are busy every week: the hour-of-week baseline knows them."""
    arrivals = quiet(4)
    monday_ten = MONTH_START + timedelta(weeks=1, hours=10)
    index = surges.Arrivals(arrivals)
    assert len(index.window(monday_ten - surges.WINDOW, monday_ten)) > surges.MIN_COUNT / 2
    assert surges.detect(index, monday_ten) == []


def test_the_thresholds():
    assert not surges.is_surge(4, 0.0)  # too few to matter, however unusual
    assert surges.is_surge(8, 0.0)
    assert not surges.is_surge(12, 6.0)  # twice the usual: not a multiple to alarm on
    assert surges.is_surge(25, 6.0)
    assert surges.poisson_tail(0, 3.0) == 1.0
    assert surges.poisson_tail(1, 2.0) == pytest.approx(1 - 2.718281828 ** -2)


def test_similar_tickets_are_grouped_together():
    checkout = ["checkout page shows error 503 when paying", "error 503 on the checkout page please help",
                "paying fails at checkout with error 503", "checkout error 503 again since yesterday"]
    tickets = [(f"P-{i}", terms(text)) for i, text in enumerate(checkout)]
    others = [(f"O-{i}", terms(phrase)) for i, phrase in enumerate(p for ps in PHRASES.values() for p in ps)]
    groups = surges.group_similar(tickets + others)
    assert ["P-0", "P-1", "P-2", "P-3"] in groups
    assert all(not (set(g) & {"P-0", "P-1", "P-2", "P-3"}) or len(g) == 4 for g in groups)
    assert surges.signature([t for _, t in tickets]) == frozenset({"checkout", "error", "503"})


def test_dissimilar_tickets_stay_apart():
    groups = surges.group_similar([("A", {"parcel", "arrived"}), ("B", {"invoice", "wrong", "amount"}),
                                   ("C", {"password", "reset"})])
    assert groups == []


def test_weeks_before_the_first_ticket_are_not_counted_as_quiet():
    """A new install, one week old: its busy hours are judged against that one week, not against three empty
    weeks before it (which would make every busy Monday morning a surge)."""
    week_one = [a for a in quiet(5, weeks=2)]
    start = week_one[0].created_at
    judged_from = start + timedelta(weeks=1)
    assert _alarms(week_one, judged_from, judged_from + timedelta(weeks=1)) == []
    # told that the store knew nothing before a much earlier moment, the empty weeks count as quiet ones
    index = surges.Arrivals(week_one, known_since=start - timedelta(weeks=4))
    now, alarms = judged_from, []
    while now < judged_from + timedelta(weeks=1):
        alarms.extend(surges.detect(index, now))
        now += STEP
    assert alarms
