"""Saved custom reports: the REST routes, and the functions the workspace calls too. Kept by the analytics
service (beside the measures they name), each person's own; run with the figures the caller may see."""
from typing import Literal

from flask import Blueprint, Response, jsonify

from helpdesk_common.contracts import Contract, validate
from helpdesk_common.contracts.analytics import ReportView, SavedReportRequest, SavedReportView

from . import json_body, operation, query_args, services, viewer
from .reports import to_csv

bp = Blueprint("saved_reports", __name__, url_prefix="/api/v1")

STAFF = ("admin", "agent")


class RunQuery(Contract):
    format: Literal["json", "csv"] = "json"


@operation(bp, "/saved-reports", "POST", summary="Save a custom report", tag="reports", body=SavedReportRequest,
           answer=SavedReportView, answer_status=201, roles=STAFF, errors=(400, 403, 409, 413, 415, 422), scope="own")
def save():
    """Keeps a measure with its grouping, filters and period (rolling: ``last_7_days``, ``last_30_days``,
    ``last_week``, ``last_month``, ``this_week``, ``this_month``; or ``fixed`` with ``from`` and ``to``) for the
    caller. Checked as the report would run: the reports' 422 codes; 409 ``report_name_taken``."""
    return jsonify(save_report(json_body())), 201


@operation(bp, "/saved-reports", "GET", summary="My saved reports", tag="reports", answer=SavedReportView,
           answer_is_list=True, roles=STAFF, errors=(403,), scope="own")
def list_saved():
    return jsonify(services().call("analytics", "saved_reports", viewer()))


@operation(bp, "/saved-reports/<int:report_id>", "GET", summary="A saved report", tag="reports",
           answer=SavedReportView, roles=STAFF, errors=(403, 404))
def read(report_id):
    """One's own (admins any); others 404 ``saved_report_not_found``."""
    return jsonify(services().call("analytics", "saved_report", report_id, viewer()))


@operation(bp, "/saved-reports/<int:report_id>", "DELETE", summary="Delete a saved report", tag="reports",
           answer=SavedReportView, roles=STAFF, errors=(403, 404))
def delete(report_id):
    """One's own (admins any); answers the report deleted."""
    return jsonify(services().call("analytics", "delete_saved_report", report_id, viewer()))


@operation(bp, "/saved-reports/<int:report_id>/report", "GET", summary="Run a saved report", tag="reports",
           query=RunQuery, answer=ReportView, also_media_types=("text/csv",), roles=STAFF, errors=(403, 404, 422))
def run(report_id):
    """The saved report's figures now (its period resolved at this moment), as the caller may see them;
    ``format=csv`` as CSV."""
    query = query_args(RunQuery)
    answer = run_saved_report(report_id)
    if query.format == "csv":
        return Response(to_csv(answer), mimetype="text/csv", headers={
            "Content-Disposition": f'attachment; filename="{answer["measure"]}.csv"'})
    return jsonify(answer)


def save_report(report):
    validate(SavedReportRequest, report)
    return services().call("analytics", "save_report", report, viewer())


def run_saved_report(report_id):
    return services().call("analytics", "run_saved_report", report_id, viewer())
