"""Contracts of the analytics service: the query of a report, and the answer.

The gateway validates a report's query string against :class:`ReportQuery` (lax: query strings carry text)
and the analytics service checks what one model cannot (``from`` before ``to``, the period's length, the time
zone) with :func:`check_period`, so both answer the same 422s.
"""
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ConfigDict, Field, StringConstraints

from ..errors import ValidationFailed
from . import Contract, View

__all__ = ["ReportQuery", "ReportView", "SpikeDetected", "SpikeTicket", "SavedReportRequest", "SavedReportView",
           "resolve_period", "PERIODS", "MEASURES", "GROUPS", "MAX_PERIOD_DAYS", "check_period"]

MEASURES = ("volume", "backlog", "first_response", "resolution", "sla", "escalations", "one_touch", "agents",
            "csat", "nps", "chats", "deflection")
DIMENSIONS = ("team", "agent", "channel", "priority", "category", "language", "policy")
GROUPS = DIMENSIONS + ("day", "week", "month")
MAX_PERIOD_DAYS = 400
"""The longest period one report covers (a year and a bit: a year compared with the same week last year)."""

Filter = Optional[Annotated[str, StringConstraints(min_length=1, max_length=100)]]


class ReportQuery(Contract):
    """``GET /api/v1/reports/{measure}`` query string. ``from`` and ``to`` are ISO dates or moments (a date is
    midnight in ``tz``); ``group_by`` is a comma-separated list of team, agent, channel, priority, category,
    language, policy, day, week, month; each dimension also filters (``team=support``)."""

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True, populate_by_name=True)

    from_: Annotated[str, StringConstraints(min_length=10, max_length=40)] = Field(alias="from")
    to: Annotated[str, StringConstraints(min_length=10, max_length=40)]
    group_by: Optional[Annotated[str, StringConstraints(max_length=200)]] = None
    tz: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "UTC"
    format: Literal["json", "csv"] = "json"
    team: Filter = None
    agent: Filter = None
    channel: Filter = None
    priority: Filter = None
    category: Filter = None
    language: Filter = None
    policy: Filter = None

    def groups(self):
        return [g.strip() for g in (self.group_by or "").split(",") if g.strip()]

    def filters(self):
        return {name: getattr(self, name) for name in DIMENSIONS if getattr(self, name) is not None}


def _moment(text, zone, field):
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(f"{field} must be an ISO date (2026-11-23) or moment (2026-11-23T09:00:00Z).",
                               code="invalid_period",
                               details=[{"field": field, "code": "invalid_value", "message": "not an ISO date"}]) from None
    return value if value.tzinfo else value.replace(tzinfo=zone)


def check_period(measure, query):
    """Check what a report's query means: a known measure, groups, a time zone, ``from`` before ``to`` and a
    period within :data:`MAX_PERIOD_DAYS`. Returns ``(start, end, groups, filters, tz)``, or raises a 422."""
    if measure not in MEASURES:
        raise ValidationFailed(f"There is no measure {measure!r}; the measures are {', '.join(MEASURES)}.",
                               code="unknown_measure")
    try:
        zone = ZoneInfo(query["tz"])
    except (ZoneInfoNotFoundError, ValueError, KeyError):
        raise ValidationFailed(f"Unknown time zone {query.get('tz')!r}; use an IANA name such as Europe/Stockholm.",
                               code="unknown_time_zone",
                               details=[{"field": "tz", "code": "invalid_value", "message": "unknown time zone"}]) from None
    start, end = _moment(query["from"], zone, "from"), _moment(query["to"], zone, "to")
    if start >= end:
        raise ValidationFailed("'from' must come before 'to'.", code="period_reversed",
                               details=[{"field": "from", "code": "invalid_value", "message": "not before 'to'"}])
    if end - start > timedelta(days=MAX_PERIOD_DAYS):
        raise ValidationFailed(f"A report covers at most {MAX_PERIOD_DAYS} days; ask for a shorter period.",
                               code="period_too_long",
                               details=[{"field": "to", "code": "invalid_value", "message": "period too long"}])
    groups = [g.strip() for g in (query.get("group_by") or "").split(",") if g.strip()]
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise ValidationFailed(f"Unknown group {unknown[0]!r}; group by {', '.join(GROUPS)}.", code="unknown_group",
                               details=[{"field": "group_by", "code": "invalid_choice", "message": f"unknown {g!r}"}
                                        for g in unknown])
    if len(set(groups)) != len(groups) or sum(g in ("day", "week", "month") for g in groups) > 1:
        raise ValidationFailed("Group by each dimension once, and by at most one of day, week, month.",
                               code="unknown_group",
                               details=[{"field": "group_by", "code": "invalid_value", "message": "repeated group"}])
    filters = {name: query[name] for name in DIMENSIONS if query.get(name) is not None}
    return start, end, groups, filters, query["tz"]


class ReportView(View):
    measure: str
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    tz: str
    group_by: list[str]
    filters: dict[str, str]
    rows: list[dict[str, Any]]


class SpikeTicket(View):
    number: str
    created_at: datetime


class SpikeDetected(View):
    """A surge: far more new tickets of one kind in the last window than that hour of the week usually brings."""

    spike_id: str = Field(description="Stable for one surge: the same surge announced again has the same id.")
    dimension: Literal["category", "team", "channel", "wording"] = Field(
        description="What the tickets have in common: a category, team or channel, or wording alike (value: the "
                    "terms most of them share, as the knowledge base analyses text).")
    value: str
    window_start: datetime
    window_end: datetime
    count: int = Field(description="New tickets of this kind in the window.")
    baseline: float = Field(description="The usual count of this window of the week (mean of the previous weeks).")
    tickets: list[SpikeTicket] = Field(description="The tickets involved, oldest first.")
    detected_at: datetime


class SpikeView(View):
    spike_id: str
    dimension: str
    value: str
    window_start: datetime
    window_end: datetime
    count: int
    baseline: float
    tickets: list[str] = Field(description="The tickets involved that the caller may see.")
    detected_at: datetime


class SimilarTicket(View):
    number: str
    subject: str
    created_at: datetime


class SimilarGroup(View):
    terms: list[str] = Field(description="The terms most of the group's tickets share.")
    tickets: list[SimilarTicket]


class ProblemsOverview(View):
    """Surges of the last day and open tickets worded alike: candidates for one problem."""

    spikes: list[SpikeView]
    groups: list[SimilarGroup]


PERIODS = ("last_7_days", "last_30_days", "last_week", "last_month", "this_week", "this_month", "fixed")
"""A saved report's period: rolling (up to now), the last or current whole week (Monday first) or month, in
the report's time zone; or ``fixed`` (its own ``from`` and ``to``)."""


class SavedReportRequest(Contract):
    """A custom report kept for its author: a measure, its grouping, filters and a period."""

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True, populate_by_name=True)

    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    measure: Literal[MEASURES]
    group_by: Optional[Annotated[str, StringConstraints(max_length=200)]] = None
    filters: dict[Literal[DIMENSIONS], Annotated[str, StringConstraints(min_length=1, max_length=100)]] = {}
    period: Literal[PERIODS] = "last_7_days"
    from_: Optional[Annotated[str, StringConstraints(min_length=10, max_length=40)]] = Field(None, alias="from")
    to: Optional[Annotated[str, StringConstraints(min_length=10, max_length=40)]] = None
    tz: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "UTC"


class SavedReportView(View):
    id: int
    owner: str
    name: str
    measure: str
    group_by: list[str]
    filters: dict[str, str]
    period: str
    start: Optional[datetime] = Field(None, alias="from", description="Only for a fixed period.")
    end: Optional[datetime] = Field(None, alias="to")
    tz: str
    created_at: datetime


def resolve_period(period, tz, now, start=None, end=None):
    """``(from, to)`` ISO moments of a saved report's ``period`` at ``now`` in time zone ``tz``."""
    if period == "fixed":
        return start, end
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period in ("last_7_days", "last_30_days"):
        days = 7 if period == "last_7_days" else 30
        return _local(midnight - timedelta(days=days - 1), zone).isoformat(), now.isoformat()
    if period in ("this_week", "last_week"):
        monday = _local(midnight - timedelta(days=local.weekday()), zone)
        if period == "this_week":
            return monday.isoformat(), now.isoformat()
        return _local(monday - timedelta(days=7), zone).isoformat(), monday.isoformat()
    first = _local(midnight.replace(day=1), zone)
    if period == "this_month":
        return first.isoformat(), now.isoformat()
    previous = (first - timedelta(days=1)).replace(day=1)
    return _local(previous, zone).isoformat(), first.isoformat()


def _local(moment, zone):
    """The same wall-clock time, its offset right for that date (across a change of summer time)."""
    return moment.replace(tzinfo=None).replace(tzinfo=zone)
