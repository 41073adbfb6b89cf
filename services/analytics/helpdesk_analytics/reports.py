"""A report asked over RPC: its query checked, its records read, its measure computed."""
from helpdesk_common.contracts.analytics import check_period

from . import measures, store


def run(session, measure, query, viewer, now):
    """The report ``measure`` for ``query`` (the ``ReportQuery`` fields, ``from`` by its alias) as ``viewer``
    may see it."""
    start, end, groups, filters, tz = check_period(measure, query)
    scope = store.scope_of(session, viewer)
    question = measures.Query(measure, start, end, tuple(groups), tuple(sorted(filters.items())), tz)
    rows = measures.report(question, store.load(session, question, scope, now), now)
    return {"measure": measure, "from": start.isoformat(), "to": end.isoformat(), "tz": tz, "group_by": groups,
            "filters": filters, "rows": rows}
