"""The reports API: ``GET /api/v1/reports/<measure>`` (JSON or CSV) and survey answers handed to analytics.

Register with ``app.register_blueprint(reports.bp)``. Calls the ``analytics`` service over RPC; the service
checks the period, groups and time zone (``check_period``: 422s with stable codes) and limits the figures to
what the caller may see (admins everything; an agent their teams' tickets and their own).
"""
import csv
import io
import json
import uuid

from flask import Blueprint, Response, jsonify

from helpdesk_common.contracts import validate
from helpdesk_common.contracts.analytics import ReportQuery, ReportView
from helpdesk_common.contracts.surveys import CsatSubmitted, NpsSubmitted

from . import json_body, operation, query_args, services, viewer

bp = Blueprint("reports", __name__, url_prefix="/api/v1")

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A spreadsheet runs a cell beginning so as a formula (CSV injection): such text is written with a leading
apostrophe, which the spreadsheet shows as text and does not run."""


def safe_cell(value):
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(report):
    columns = list(report["group_by"])
    for row in report["rows"]:
        columns.extend(name for name in row if name not in columns)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in report["rows"]:
        writer.writerow([safe_cell(row.get(name)) for name in columns])
    return out.getvalue()


@operation(bp, "/reports/<measure>", "GET", summary="A report", tag="reports", query=ReportQuery, answer=ReportView,
           also_media_types=("text/csv",), roles=("admin", "agent"), errors=(403, 422), scope="list")
def report(measure):
    """One measure (volume, backlog, first_response, resolution, sla, escalations, one_touch, agents, csat, nps,
    chats, deflection) over ``[from, to)`` (at most 400 days), grouped by ``group_by``
    (comma-separated: team, agent, channel, priority, category, language, policy, and one of day, week, month,
    in time zone ``tz``) and filtered by any dimension (``team=support``). ``format=csv`` answers the rows as
    CSV (text beginning ``=``, ``+``, ``-`` or ``@`` is written with a leading apostrophe). 422 codes:
    ``period_reversed``, ``period_too_long``, ``unknown_group``, ``unknown_time_zone``, ``invalid_period``,
    ``unknown_measure``. Admins see every figure; an agent those of their teams' tickets and their own."""
    query = query_args(ReportQuery)
    answer = services().call("analytics", "report", measure, query.model_dump(by_alias=True, exclude={"format"}),
                             viewer())
    if query.format == "csv":
        return Response(to_csv(answer), mimetype="text/csv", headers={
            "Content-Disposition": f'attachment; filename="{measure}.csv"'})
    return jsonify(answer)


def _survey(kind, model):
    body = json_body()
    command = validate(model, body)
    # the answer's own id names the delivery: the same answer sent again counts once
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"helpdesk:{kind}:{command.answer_id}"))
    return jsonify(services().call("analytics", "record_survey_answer", kind, body, event_id)), 202


@operation(bp, "/surveys/csat", "POST", summary="Record a CSAT answer", tag="reports", body=CsatSubmitted,
           answer_status=202, roles=("admin",), errors=(400, 403, 415, 422))
def record_csat():
    """A customer's 1-5 rating of a ticket, on the ``csat_submitted`` contract (for a survey tool that does not
    publish events). A later answer to the same ``survey_id`` replaces the earlier one; the same ``answer_id``
    sent again counts once."""
    return _survey("csat", CsatSubmitted)


@operation(bp, "/surveys/nps", "POST", summary="Record an NPS answer", tag="reports", body=NpsSubmitted,
           answer_status=202, roles=("admin",), errors=(400, 403, 415, 422))
def record_nps():
    """A 0-10 answer to the NPS survey, on the ``nps_submitted`` contract; replaces and repeats as for CSAT."""
    return _survey("nps", NpsSubmitted)
