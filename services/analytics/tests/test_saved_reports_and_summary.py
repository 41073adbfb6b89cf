"""Saved custom reports (each person their own), the key figures, and the weekly summary sent once a week
(SQLite, a generated history; no broker)."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from analytics_history import START, generate
from analytics_recount import Recount
from analytics_history import CALENDARS, STATUSES
from helpdesk_analytics import reports, saved_reports, summary
from helpdesk_analytics.surge_models import SummaryMail
from helpdesk_common.contracts import validate
from helpdesk_common.contracts.analytics import SavedReportRequest
from helpdesk_common.errors import Conflict, NotFound, ValidationFailed
from helpdesk_common.events import new_event
from test_reports_match_recount import feed

NOW = START + timedelta(days=30, hours=9)  # a Wednesday in the fifth week
ADA = {"actor": "ada", "role": "admin", "teams": []}
BO = {"actor": "bo", "role": "agent", "email": "bo@example.com", "teams": ["billing"]}
CY = {"actor": "cy", "role": "agent", "email": "cy@example.com", "teams": ["support"]}


@pytest.fixture(scope="module")
def events():
    return generate(tickets=400, weeks=5, seed=5)


@pytest.fixture
def fed(sessions, settings, events):
    feed(sessions, settings, events)
    return sessions


def _save(sessions, viewer, **fields):
    body = {"name": "Billing last week", "measure": "volume", "group_by": "day", "period": "last_week", **fields}
    with sessions.begin() as session:
        return saved_reports.save(session, validate(SavedReportRequest, body), viewer, NOW)


def test_a_saved_report_runs_as_the_same_report_over_its_period(fed):
    saved = _save(fed, BO, filters={"priority": "high"})
    with fed() as session:
        answer = saved_reports.run(session, saved["id"], BO, NOW)
        week, start, end = summary.last_week(NOW, "UTC")
        direct = reports.run(session, "volume", {"from": start.isoformat(), "to": end.isoformat(), "tz": "UTC",
                                                 "group_by": "day", "priority": "high"}, BO, NOW)
    assert answer["rows"] == direct["rows"] and answer["rows"]
    assert answer["from"] == start.isoformat() and answer["saved_report"]["name"] == "Billing last week"
    assert {row["day"] for row in answer["rows"]} <= {(start + timedelta(days=d)).date().isoformat() for d in range(7)}


def test_each_person_sees_their_own_and_admins_any(fed):
    mine = _save(fed, BO)
    _save(fed, CY, name="Support")
    with fed() as session:
        assert [r["name"] for r in saved_reports.list_own(session, BO)] == ["Billing last week"]
        with pytest.raises(NotFound):
            saved_reports.find(session, mine["id"], CY)
        with pytest.raises(NotFound):
            saved_reports.run(session, mine["id"], CY, NOW)
        assert saved_reports.find(session, mine["id"], ADA).owner == "bo"
    with fed.begin() as session, pytest.raises(NotFound):
        saved_reports.delete(session, mine["id"], CY)
    with fed.begin() as session:
        assert saved_reports.delete(session, mine["id"], BO) == mine
    with fed() as session:
        assert saved_reports.list_own(session, BO) == []


@pytest.mark.parametrize("fields, code", [
    ({"group_by": "planet"}, "unknown_group"),
    ({"tz": "Mars/Olympus"}, "unknown_time_zone"),
    ({"period": "fixed", "from": "2026-11-01"}, "invalid_period"),
    ({"period": "fixed", "from": "2026-11-01", "to": "2026-10-01"}, "period_reversed"),
    ({"period": "fixed", "from": "2024-01-01", "to": "2026-10-01"}, "period_too_long"),
    ({"from": "2026-11-01"}, "invalid_period"),
])
def test_a_report_that_could_not_run_is_not_saved(sessions, fields, code):
    with pytest.raises(ValidationFailed) as refused:
        _save(sessions, BO, **fields)
    assert refused.value.code == code
    with sessions() as session:
        assert saved_reports.list_own(session, BO) == []


def test_a_name_is_one_report_per_person(sessions):
    _save(sessions, BO)
    with pytest.raises(Conflict) as refused:
        _save(sessions, BO)
    assert refused.value.code == "report_name_taken"
    assert _save(sessions, CY)["owner"] == "cy"  # another person may use the name


def test_the_key_figures_equal_the_recount(fed, events):
    week, start, end = summary.last_week(NOW, "UTC")
    recount = Recount(events, STATUSES, CALENDARS)
    with fed() as session:
        figures = summary.key_figures(session, start.isoformat(), end.isoformat(), "UTC", ADA, NOW)
        billing = summary.key_figures(session, start.isoformat(), end.isoformat(), "UTC", BO, NOW)
    (volume,) = recount.report("volume", start, end, (), now=NOW)[0].values()
    assert (figures["created"], figures["solved"], figures["reopened"]) == (
        volume["created"], volume["solved"], volume["reopened"])
    (first,) = recount.report("first_response", start, end, (), now=NOW)[0].values()
    assert figures["first_response_median"] == pytest.approx(first["calendar_median"])
    backlog, _ = recount.report("backlog", start, end, ("day",), now=NOW)
    last = backlog[max(backlog)]
    assert figures["backlog_by_category"] == {c: last.get(c, 0) for c in ("new", "open", "pending")}
    assert figures["backlog"] == sum(figures["backlog_by_category"].values()) > 0
    (csat,) = recount.report("csat", start, end, (), now=NOW)[0].values()
    assert figures["csat"] == pytest.approx(csat["csat"]) and figures["csat_count"] == csat["count"]
    assert 0 < billing["created"] < figures["created"]  # an agent: their team's tickets and their own


def test_the_weekly_summary_is_sent_once_a_week_to_each(fed):
    mails = []

    def write(change):
        with fed.begin() as session:
            return change(session)

    def read(query):
        with fed() as session:
            return query(session)

    # stands in for intake's send_account_mail RPC (tests/test_analytics_e2e.py has the real one)
    sent = summary.send_due(write, read, mails.append, ["sue@example.com", "sam@example.com"], "UTC", NOW)
    assert sent == ["sue@example.com", "sam@example.com"] and [m["to"] for m in mails] == sent
    week, start, _ = summary.last_week(NOW, "UTC")
    assert mails[0]["subject"] == f"Helpdesk weekly summary {week}" and start.date().isoformat() in mails[0]["body"]
    assert summary.send_due(write, read, mails.append, ["sue@example.com"], "UTC", NOW + timedelta(days=2)) == []
    assert len(mails) == 2
    # the next week: again, once
    assert summary.send_due(write, read, mails.append, ["sue@example.com"], "UTC", NOW + timedelta(days=7)) == [
        "sue@example.com"]


def test_a_summary_that_could_not_be_handed_over_is_tried_again(fed):
    def write(change):
        with fed.begin() as session:
            return change(session)

    def read(query):
        with fed() as session:
            return query(session)

    def down(mail):
        raise ConnectionError("intake does not answer")

    assert summary.send_due(write, read, down, ["sue@example.com"], "UTC", NOW) == []
    with fed() as session:
        assert session.scalar(select(func.count()).select_from(SummaryMail)) == 0
    mails = []
    assert summary.send_due(write, read, mails.append, ["sue@example.com"], "UTC", NOW) == ["sue@example.com"]


def _account(account_id, email, role, at, disabled=False):
    """An ``account_changed`` event as the gateway stages it (helpdesk_gateway.accounts.account_event)."""
    return new_event("account_changed", {"account": {"id": account_id, "email": email, "name": None, "role": role,
                                                     "language": None, "disabled": disabled,
                                                     "changed_at": (NOW + timedelta(minutes=at)).isoformat()}})


def test_the_summary_goes_to_the_supervisors_and_admins_the_gateway_announced_and_the_configured_list(sessions):
    events = [_account(1, "Sue@Example.org", "supervisor", 0), _account(2, "ada@example.org", "admin", 0),
              _account(3, "bo@example.org", "agent", 0), _account(4, "old@example.org", "supervisor", 0, disabled=True)]
    with sessions.begin() as session:
        assert summary.remember_accounts(session, events + [events[0]]) == 4  # a repeat in the batch: once
    with sessions() as session:
        assert summary.recipients(session, ["team-leads@example.org", " ", "SUE@example.org"]) == [
            "ada@example.org", "sue@example.org", "team-leads@example.org"]
    # later: Bo becomes a supervisor, Ada's account is disabled; an older announcement arriving late changes nothing
    with sessions.begin() as session:
        summary.remember_accounts(session, [_account(3, "bo@example.org", "supervisor", 5),
                                            _account(2, "ada@example.org", "admin", 5, disabled=True)])
        assert summary.remember_accounts(session, [_account(3, "bo@example.org", "agent", 1)]) == 0
    with sessions() as session:
        assert summary.recipients(session) == ["bo@example.org", "sue@example.org"]


def test_an_account_event_this_version_cannot_read_is_ignored(sessions):
    odd = _account(9, "x@example.org", "supervisor", 0)
    odd["data"]["account"]["id"] = "nine"
    with sessions.begin() as session:
        assert summary.remember_accounts(session, [odd, {"id": "e", "type": "account_changed", "data": {}}]) == 0
    with sessions() as session:
        assert summary.recipients(session) == []
