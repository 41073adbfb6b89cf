"""The supervisor dashboard in the workspace: a period's key figures for a team or everyone, tickets created and
solved per day (an SVG chart drawn on the server), a report of any measure and grouping that a person saves under a
name (their saved reports: listed, opened, deleted), and the live surges and groups of similar open tickets, which
an agent turns into one problem. Calls the same gateway functions as the REST API with the person's viewer:
analytics limits the figures to what they may see (supervisors and admins everything, an agent their teams' and
their own)."""
from datetime import date

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import format_date, format_decimal, format_percent
from flask_babel import gettext as _

from helpdesk_common.contracts.analytics import GROUPS, MEASURES, resolve_period
from helpdesk_common.database import utcnow
from helpdesk_common.errors import HelpdeskError

from ..api import services, viewer
from ..api.problems import create_problem
from ..api.saved_reports import run_saved_report, save_report
from . import charts, i18n
from .workspace import bp

PERIODS = ("last_7_days", "last_30_days", "last_week", "last_month", "this_month")


def _period_and_team():
    period = request.args.get("period", "")
    team = request.args.get("team", "").strip()[:100]
    return (period if period in PERIODS else "last_7_days"), team


def _daily(rows, start, end):
    """Created and solved per day of the period, days without tickets as zeros."""
    by_day = {row["day"]: row for row in rows}
    days, day = [], date.fromisoformat(start[:10])
    last = date.fromisoformat(end[:10])
    while day <= last and len(days) < 62:
        days.append(day)
        day = date.fromordinal(day.toordinal() + 1)
    created = [by_day.get(d.isoformat(), {}).get("created", 0) for d in days]
    solved = [by_day.get(d.isoformat(), {}).get("solved", 0) for d in days]
    return days, created, solved


def duration(seconds):
    """A median time as people read it: minutes under an hour, hours under two days, else days."""
    if seconds is None:
        return "—"
    if seconds < 3600:
        return _("%(n)s min", n=format_decimal(round(seconds / 60)))
    if seconds < 48 * 3600:
        return _("%(n)s h", n=format_decimal(round(seconds / 3600, 1)))
    return _("%(n)s d", n=format_decimal(round(seconds / 86400, 1)))


def percent(share):
    return "—" if share is None else format_percent(share)


def whole(value):
    return "—" if value is None else format_decimal(round(value))


def _query():
    period, team = _period_and_team()
    tz = i18n.timezone()
    start, end = resolve_period(period, tz, utcnow())
    return period, team, start, end, {"from": start, "to": end, "tz": tz, **({"team": team} if team else {})}


def _report_choice(values):
    """The report's measure and grouping as chosen (unknown ones: tickets created and solved per day)."""
    measure = values.get("measure", "")
    group = values.get("group_by", "day")
    return (measure if measure in MEASURES else "volume"), (group if group in GROUPS or group == "" else "day")


def _cell(value):
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return format_decimal(round(value, 2))
    return str(value)


def report_table(answer):
    """A report's rows as a table: the columns in the order the rows give them (the same names as the CSV)."""
    columns = []
    for row in answer["rows"]:
        columns.extend(name for name in row if name not in columns)
    return columns, [[_cell(row.get(name)) for name in columns] for row in answer["rows"]]


def _dashboard_args(period, team, measure, group):
    return {"period": period, "team": team or None, "measure": measure, "group_by": group}


FORMATS = {"duration": duration, "percent": percent, "whole": whole, "decimal": format_decimal}


@bp.get("/dashboard")
def dashboard():
    period, team, start, end, query = _query()
    measure, group = _report_choice(request.args)
    me = viewer()
    figures, volume, report, saved, problems, teams = services().gather([
        ("analytics", "key_figures", query, me), ("analytics", "report", "volume", dict(query, group_by="day"), me),
        ("analytics", "report", measure, dict(query, group_by=group or None), me),
        ("analytics", "saved_reports", me), ("analytics", "problems", me), ("routing", "list_teams")])
    days, created, solved = _daily(volume["rows"], start, end)
    labels = [format_date(d, "d MMM") for d in days]
    chart = charts.grouped_bars(labels, [(_("created"), created), (_("solved"), solved)])
    columns, rows = report_table(report)
    return render_template("workspace/dashboard.html", figures=figures, chart=chart, periods=PERIODS, period=period,
                           team=team, teams=sorted(t["name"] for t in teams), problems=problems,
                           daily=list(zip(labels, created, solved)), measures=MEASURES, groups=("",) + GROUPS,
                           measure=measure, group=group, columns=columns, rows=rows, saved=saved, **FORMATS)


@bp.post("/dashboard/reports")
def save_dashboard_report():
    """The dashboard's current report (measure, grouping, period, team) kept under a name, through the same
    gateway function as ``POST /api/v1/saved-reports``."""
    period, team = _period_and_team()
    measure, group = _report_choice(request.form)
    back = url_for(".dashboard", **_dashboard_args(period, team, measure, group))
    try:
        saved = save_report({"name": request.form.get("name", "").strip(), "measure": measure,
                             "group_by": group or None, "filters": {"team": team} if team else {},
                             "period": period, "tz": i18n.timezone()})
    except HelpdeskError as error:
        if error.status >= 500:
            raise
        flash(_("The report was not saved: %(reason)s", reason=error.message), "error")
        return redirect(back)
    flash(_("Report “%(name)s” saved.", name=saved["name"]), "success")
    return redirect(back)


@bp.get("/dashboard/reports/<int:report_id>")
def saved_report(report_id):
    """A saved report run now (its period resolved at this moment), as the person may see it."""
    if report_id > 2**63 - 1:
        abort(404)
    answer = run_saved_report(report_id)
    columns, rows = report_table(answer)
    return render_template("workspace/saved_report.html", report=answer["saved_report"], answer=answer,
                           columns=columns, rows=rows)


@bp.post("/dashboard/reports/<int:report_id>/delete")
def delete_saved_report(report_id):
    if report_id > 2**63 - 1:
        abort(404)
    try:
        gone = services().call("analytics", "delete_saved_report", report_id, viewer())
    except HelpdeskError as error:
        if error.status >= 500:
            raise
        flash(_("The report was not deleted: %(reason)s", reason=error.message), "error")
        return redirect(url_for(".dashboard"))
    flash(_("Report “%(name)s” deleted.", name=gone["name"]), "success")
    return redirect(url_for(".dashboard"))


@bp.get("/dashboard/figures")
def dashboard_figures():
    """The key figures alone: the page asks for them again every minute (htmx), for the same period and team."""
    period, team, _, _, query = _query()
    return render_template("workspace/_dashboard_figures.html", period=period, team=team, **FORMATS,
                           figures=services().call("analytics", "key_figures", query, viewer()))


@bp.get("/dashboard/live")
def dashboard_live():
    """The surges and groups alone: the page asks for them again every half minute (htmx)."""
    return render_template("workspace/_dashboard_live.html", problems=services().call("analytics", "problems", viewer()),
                           **FORMATS)


@bp.post("/problems")
def make_problem():
    """A group of similar tickets becomes one problem (the tickets service's problem ticket)."""
    incidents = [n.strip() for n in request.form.getlist("incident") if n.strip()]
    subject = request.form.get("subject", "").strip()
    try:
        answer = create_problem({"subject": subject, "description": request.form.get("description", "").strip()
                                 or subject, "incidents": incidents})
    except HelpdeskError as error:
        if error.status >= 500:
            raise
        flash(_("The problem was not made: %(reason)s", reason=error.message), "error")
        return redirect(url_for(".dashboard"))
    flash(_("Problem %(number)s made of %(count)s tickets.", number=answer["problem"]["number"],
            count=len(answer["incidents"])), "success")
    return redirect(url_for(".ticket", number=answer["problem"]["number"]))
