"""Reports through the gateway against every process (SQLite): tickets made through the API reach the
analytics service by events and show in the reports; an agent sees their teams' figures only; CSV exports
neutralise spreadsheet formulas; a report out of range answers a clear 422; a survey answer handed to the API
counts once."""
import csv
import io
import uuid

import pytest

from stack import create_token, new_ticket, stack_fixture, wait_for

pytestmark = pytest.mark.e2e
PERIOD = {"from": "2020-01-01", "to": "2020-12-31"}


stack = stack_fixture("analytics")


def today_period():
    from datetime import datetime, timedelta, timezone
    now = datetime.now(timezone.utc)
    return {"from": (now - timedelta(days=1)).date().isoformat(), "to": (now + timedelta(days=1)).date().isoformat()}


def test_tickets_show_in_the_reports_as_each_viewer_may_see_them(stack):
    admin = stack.session()
    tag = uuid.uuid4().hex[:6]
    teams = {"red": f"red-{tag}", "blue": f"blue-{tag}"}
    for team in teams.values():
        assert admin.post(f"{stack.url}/api/v1/teams", json={"name": team}).status_code == 201
    for team, count in ((teams["red"], 2), (teams["blue"], 1)):
        for _ in range(count):
            assert admin.post(f"{stack.url}/api/v1/tickets", json=new_ticket(team=team)).status_code == 201
    period = today_period()

    def created_by_team():
        answer = admin.get(f"{stack.url}/api/v1/reports/volume", params={**period, "group_by": "team"})
        assert answer.status_code == 200, answer.text
        return {row["team"]: row["created"] for row in answer.json()["rows"] if row["team"] in teams.values()}

    assert wait_for(lambda: created_by_team() == {teams["red"]: 2, teams["blue"]: 1} or None,
                    what="the new tickets counted by team")
    agent = stack.session(create_token(stack, "agent", email=f"rita-{tag}@example.com", teams=[teams["red"]]))
    seen = agent.get(f"{stack.url}/api/v1/reports/volume", params={**period, "group_by": "team"}).json()["rows"]
    assert [row["team"] for row in seen] == [teams["red"]]
    customer = stack.session(create_token(stack, "customer", email=f"c-{tag}@example.com"))
    assert customer.get(f"{stack.url}/api/v1/reports/volume", params=period).status_code == 403


def test_a_csat_answer_counts_once_and_its_csv_cannot_run_a_formula(stack):
    admin = stack.session()
    survey = f"csat-{uuid.uuid4().hex[:8]}"
    answer = {"survey_id": survey, "answer_id": f"{survey}-a", "ticket": "HD-000001", "rating": 5,
              "comment": '=HYPERLINK("http://evil.example","click")', "channel": "email", "team": f"t-{survey}",
              "submitted_at": "2020-06-01T10:00:00+00:00"}
    for _ in range(2):  # the same answer sent twice
        sent = admin.post(f"{stack.url}/api/v1/surveys/csat", json=answer)
        assert sent.status_code == 202, sent.text
    rows = admin.get(f"{stack.url}/api/v1/reports/csat",
                     params={**PERIOD, "group_by": "team", "team": f"t-{survey}"}).json()["rows"]
    assert [(row["count"], row["csat"]) for row in rows] == [(1, 1.0)]
    exported = admin.get(f"{stack.url}/api/v1/reports/csat", params={**PERIOD, "group_by": "team",
                                                                     "team": f"t-{survey}", "format": "csv"})
    assert exported.status_code == 200 and exported.headers["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(exported.text)))
    assert table[0][:3] == ["team", "count", "satisfied"]
    comments = table[1][table[0].index("comments")]
    assert comments.startswith("[") and "=HYPERLINK" in comments  # a JSON list: the cell does not begin with =
    team_cell = table[1][0]
    assert team_cell == f"t-{survey}"
    wrong = dict(answer, rating=9)
    refused = admin.post(f"{stack.url}/api/v1/surveys/csat", json=wrong)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "validation_failed"


def test_a_formula_in_a_grouped_value_is_written_as_text(stack):
    admin = stack.session()
    team = f"=1+2-{uuid.uuid4().hex[:4]}"
    answer = {"survey_id": f"s-{team}", "answer_id": f"a-{team}", "ticket": "HD-000002", "rating": 2,
              "channel": "email", "team": team, "submitted_at": "2020-06-02T10:00:00+00:00"}
    assert admin.post(f"{stack.url}/api/v1/surveys/csat", json=answer).status_code == 202
    exported = admin.get(f"{stack.url}/api/v1/reports/csat", params={**PERIOD, "group_by": "team", "team": team,
                                                                     "format": "csv"})
    table = list(csv.reader(io.StringIO(exported.text)))
    assert table[1][0] == "'" + team


@pytest.mark.parametrize("params, code", [
    ({"from": "2026-10-10", "to": "2026-10-01"}, "period_reversed"),
    ({"from": "2020-01-01", "to": "2026-10-01"}, "period_too_long"),
    ({**PERIOD, "group_by": "team,colour"}, "unknown_group"),
    ({**PERIOD, "tz": "Mars/Olympus"}, "unknown_time_zone"),
    ({**PERIOD, "colour": "red"}, "validation_failed"),
])
def test_a_report_out_of_range_answers_a_clear_422(stack, params, code):
    answer = stack.session().get(f"{stack.url}/api/v1/reports/volume", params=params)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == code and answer.json()["error"]["message"]


def test_an_unknown_measure_answers_422(stack):
    answer = stack.session().get(f"{stack.url}/api/v1/reports/happiness", params=PERIOD)
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "unknown_measure"


def test_a_rebuild_from_the_tickets_export_while_the_service_runs_changes_no_figure(stack):
    import os
    import subprocess

    from stack import BIN, ROOT

    admin = stack.session()
    team = f"green-{uuid.uuid4().hex[:6]}"
    assert admin.post(f"{stack.url}/api/v1/teams", json={"name": team}).status_code == 201
    numbers = [admin.post(f"{stack.url}/api/v1/tickets", json=new_ticket(team=team)).json()["number"] for _ in range(3)]
    reply = admin.post(f"{stack.url}/api/v1/tickets/{numbers[0]}/messages", json={"body": "On it.", "visibility": "public"})
    assert reply.status_code == 201, reply.text
    for status in ("resolved", "open", "resolved"):  # resolved, reopened, resolved again
        changed = admin.patch(f"{stack.url}/api/v1/tickets/{numbers[1]}", json={"status": status})
        assert changed.status_code == 200, changed.text
    period = {**today_period(), "team": team}

    def figures():
        return {measure: admin.get(f"{stack.url}/api/v1/reports/{measure}", params=period).json()["rows"]
                for measure in ("volume", "first_response", "one_touch")}

    def settled():
        now = figures()
        return now if now["volume"] == [{"created": 3, "solved": 1, "reopened": 1}] and now["first_response"] else None

    before = wait_for(settled, what="the tickets' events counted")
    result = subprocess.run([os.path.join(BIN, "analytics-rebuild"), "--page", "2"], cwd=ROOT, env=stack.env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "rebuilt" in result.stderr and "tickets" in result.stderr
    assert figures() == before
