"""Saved custom reports: a person keeps a measure with its grouping, filters and period, and runs it again.
Plain functions of a session, the viewer and an explicit ``now``.

Each person sees and runs their own; admins (supervisors are admins to the services) also anyone's. A
report runs with the figures its *runner* may see (``reports.run``), so a report shared by id could never
show more than the reader's own scope anyway.
"""
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from helpdesk_common.contracts.analytics import check_period, resolve_period
from helpdesk_common.errors import Conflict, NotFound, ValidationFailed

from . import reports
from .surge_models import SavedReport

MAX_PER_PERSON = 200


def view(row):
    return {"id": row.id, "owner": row.owner, "name": row.name, "measure": row.measure, "group_by": row.group_by,
            "filters": row.filters, "period": row.period, "from": row.start, "to": row.end, "tz": row.tz,
            "created_at": row.created_at.isoformat()}


def _query(row_or_request, now):
    """The report query (``ReportQuery`` fields) the saved report means at ``now``."""
    r = row_or_request
    start, end = resolve_period(r["period"], r["tz"], now, r.get("from"), r.get("to"))
    query = {"from": start, "to": end, "tz": r["tz"], "group_by": ",".join(r["group_by"]) or None}
    query.update(r["filters"])
    return query


def save(session, request, viewer, now):
    """Keep ``request`` (a ``SavedReportRequest``) for the viewer; answers its view. 422 when the report could
    not run (checked now, as it would run), 409 ``report_name_taken`` for a second report of the same name."""
    fields = {"period": request.period, "tz": request.tz, "from": request.from_, "to": request.to,
              "group_by": [g.strip() for g in (request.group_by or "").split(",") if g.strip()],
              "filters": dict(request.filters)}
    if request.period == "fixed" and not (request.from_ and request.to):
        raise ValidationFailed("A fixed period needs 'from' and 'to'.", code="invalid_period",
                               details=[{"field": "from", "code": "missing", "message": "needed for period fixed"}])
    if request.period != "fixed" and (request.from_ or request.to):
        raise ValidationFailed("'from' and 'to' are for period fixed; a rolling period has none.",
                               code="invalid_period", details=[{"field": "period", "code": "invalid_value"}])
    try:
        check_period(request.measure, _query(fields, now))  # the same 422s as the report itself
    except (ValueError, KeyError) as error:  # an unknown time zone in resolve_period
        raise ValidationFailed(f"Unknown time zone {request.tz!r}; use an IANA name such as Europe/Stockholm.",
                               code="unknown_time_zone", details=[{"field": "tz", "code": "invalid_value"}]) from error
    owner = viewer["actor"]
    if len(session.scalars(select(SavedReport.id).where(SavedReport.owner == owner)).all()) >= MAX_PER_PERSON:
        raise Conflict(f"You have {MAX_PER_PERSON} saved reports; delete one first.", code="too_many_reports")
    row = SavedReport(owner=owner, name=request.name, measure=request.measure, group_by=fields["group_by"],
                      filters=fields["filters"], period=request.period, start=request.from_, end=request.to,
                      tz=request.tz, created_at=now)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise Conflict(f"You already have a report called {request.name!r}; choose another name.",
                       code="report_name_taken") from None
    return view(row)


def _may_see(row, viewer):
    return row is not None and (row.owner == viewer["actor"] or viewer.get("role") in ("admin", "system"))


def find(session, report_id, viewer):
    row = session.get(SavedReport, report_id)
    if not _may_see(row, viewer):
        raise NotFound(f"There is no saved report {report_id} of yours.", code="saved_report_not_found")
    return row


def list_own(session, viewer):
    rows = session.scalars(select(SavedReport).where(SavedReport.owner == viewer["actor"]).order_by(SavedReport.name))
    return [view(row) for row in rows]


def delete(session, report_id, viewer):
    """Delete one's own saved report (admins any); answers what it was."""
    row = find(session, report_id, viewer)
    answer = view(row)
    session.delete(row)
    return answer


def run(session, report_id, viewer, now):
    """The saved report's figures at ``now``, as the viewer may see them."""
    row = find(session, report_id, viewer)
    fields = {"period": row.period, "tz": row.tz, "from": row.start, "to": row.end, "group_by": row.group_by,
              "filters": row.filters}
    answer = reports.run(session, row.measure, _query(fields, now), viewer, now)
    return dict(answer, saved_report=view(row))
