"""Business time: when a calendar is open, how much open time lies between two moments, and when a
target measured in open time falls due. Plain functions, no nameko, no database.

A :class:`Calendar` is a weekly timetable in one time zone with holidays (the ``WorkingHours`` shape of
``helpdesk_common.contracts.routing``). SLA clocks use it with *pauses* (the ticket waited on the
customer): paused time never counts. Agents' working hours use it too (:func:`is_open`).

Every moment given or returned is an aware datetime; results are in UTC. Wall-clock intervals are
turned into instants day by day with ``zoneinfo``, so a day on which the clocks change is 23 or 25
hours long, as it is for the people working it. A working interval that starts or ends in the hour
skipped in spring is taken at the same wall time with the offset before the change (Python's rule).
"""
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Iterable, Iterator, Optional
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_DAYS = 366 * 5  # a calendar with no open time at all must not loop for ever
_FAR_FUTURE = datetime.max.replace(tzinfo=timezone.utc) - timedelta(days=2)


def _parse_interval(text):
    start, end = text.split("-")
    return _minute(start), _minute(end)


def _minute(text):
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True)
class Calendar:
    """Open hours per weekday (minutes from local midnight, Monday first), a time zone, holidays."""

    timezone: str = "UTC"
    weekly: tuple = field(default_factory=lambda: ((),) * 7)
    holidays: frozenset = frozenset()

    @classmethod
    def from_dict(cls, data):
        """From ``{"timezone": ..., "weekly": {"mon": ["09:00-17:00"], ...}, "holidays": ["2026-12-25"]}``."""
        weekly = data.get("weekly") or {}
        return cls(
            timezone=data.get("timezone") or "UTC",
            weekly=tuple(tuple(sorted(_parse_interval(i) for i in weekly.get(day, ()))) for day in WEEKDAYS),
            holidays=frozenset(d if isinstance(d, date) else date.fromisoformat(d)
                               for d in data.get("holidays") or ()),
        )

    @classmethod
    def always(cls):
        """Open around the clock, every day (in UTC)."""
        return cls(weekly=((((0, 1440),),) * 7))

    @property
    def zone(self):
        return _zone(self.timezone)


@lru_cache(maxsize=None)
def _zone(name):
    return ZoneInfo(name)


def _instant(day, minute, zone):
    if minute >= 1440:
        day, minute = day + timedelta(days=1), minute - 1440
    return datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone).astimezone(timezone.utc)


def _aware(moment, name):
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be an aware datetime")
    return moment.astimezone(timezone.utc)


def _intervals_from(calendar, start) -> Iterator[tuple]:
    """Open intervals (UTC) that end after ``start``, in order, clipped to begin no earlier than it."""
    zone = calendar.zone
    day = start.astimezone(zone).date() - timedelta(days=1)  # an interval of the day before may still run
    for _ in range(MAX_DAYS):
        if day not in calendar.holidays:
            for first, last in calendar.weekly[day.weekday()]:
                begin, end = _instant(day, first, zone), _instant(day, last, zone)
                if end > start:
                    yield max(begin, start), end
        day += timedelta(days=1)


def _merged(pauses) -> list:
    """Pauses as sorted, non-overlapping UTC intervals; an open pause (end None) runs for ever."""
    spans = sorted((_aware(begin, "a pause's start"),
                    _aware(end, "a pause's end") if end is not None else _FAR_FUTURE)
                   for begin, end in pauses)
    merged = []
    for begin, end in spans:
        if end <= begin:
            continue
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((begin, end))
    return merged


def _without_pauses(intervals, pauses) -> Iterator[tuple]:
    """``intervals`` (ordered) minus ``pauses`` (merged)."""
    index = 0
    for begin, end in intervals:
        while index < len(pauses) and pauses[index][1] <= begin:
            index += 1
        cursor, probe = begin, index
        while cursor < end and probe < len(pauses) and pauses[probe][0] < end:
            pause_begin, pause_end = pauses[probe]
            if pause_begin > cursor:
                yield cursor, pause_begin
            cursor = max(cursor, pause_end)
            probe += 1
        if cursor < end:
            yield cursor, end


def open_intervals(calendar: Calendar, start: datetime, end: datetime, pauses: Iterable = ()) -> list:
    """The open, unpaused intervals (UTC) between ``start`` and ``end``."""
    start, end = _aware(start, "start"), _aware(end, "end")
    if end <= start:
        return []

    def clipped():
        for begin, finish in _intervals_from(calendar, start):
            if begin >= end:
                return
            yield begin, min(finish, end)

    return list(_without_pauses(clipped(), _merged(pauses)))


def business_seconds(calendar: Calendar, start: datetime, end: datetime, pauses: Iterable = ()) -> float:
    """Open time between ``start`` and ``end``, in seconds, paused time excluded (0 if end <= start)."""
    return sum((finish - begin).total_seconds() for begin, finish in open_intervals(calendar, start, end, pauses))


def due_at(calendar: Calendar, start: datetime, seconds: float, pauses: Iterable = ()) -> Optional[datetime]:
    """When ``seconds`` of open, unpaused time have passed since ``start``.

    None while the clock is stopped for good: a pause without an end (still waiting on the customer)
    begins before the target is reached, so no due time can be told yet.
    """
    start = _aware(start, "start")
    if seconds < 0:
        raise ValueError("seconds must not be negative")
    merged = _merged(pauses)
    # an open pause stops the clock from its start on: past it, nothing counts
    stop = merged[-1][0] if merged and merged[-1][1] >= _FAR_FUTURE else None
    left = float(seconds)
    for begin, end in _intervals_from(calendar, start):
        if stop is not None and begin >= stop:
            return None
        for piece_begin, piece_end in _without_pauses([(begin, end)], merged):
            span = (piece_end - piece_begin).total_seconds()
            if left <= span:
                return piece_begin + timedelta(seconds=left)
            left -= span
    raise ValueError(f"the calendar has no open time within {MAX_DAYS} days")


def is_open(calendar: Calendar, moment: datetime) -> bool:
    """Whether the calendar is open at ``moment`` (holidays closed)."""
    moment = _aware(moment, "moment")
    for begin, end in _intervals_from(calendar, moment):
        return begin <= moment < end
    return False


@dataclass(frozen=True)
class ClockState:
    """An SLA clock at one moment: what the ticket page shows."""

    target_seconds: float
    elapsed_seconds: float
    remaining_seconds: float
    due_at: Optional[datetime]
    paused: bool
    breached: bool
    warning: bool


def clock_state(calendar: Calendar, start: datetime, target_seconds: float, now: datetime,
                pauses: Iterable = (), *, stopped_at: Optional[datetime] = None,
                warning_threshold: float = 0.8) -> ClockState:
    """The state of an SLA clock started at ``start`` with a target of ``target_seconds`` business seconds.

    ``pauses`` are the intervals spent waiting on the customer (the last may have no end yet);
    ``stopped_at`` is when the clock's goal was met (first response sent, ticket resolved): time after it
    does not count. ``warning`` is true once ``warning_threshold`` of the target has elapsed.
    """
    pauses = list(pauses)
    now = _aware(now, "now")
    until = min(now, _aware(stopped_at, "stopped_at")) if stopped_at is not None else now
    elapsed = business_seconds(calendar, start, until, pauses)
    paused = stopped_at is None and any(begin <= now and (end is None or end > now) for begin, end in pauses)
    due = due_at(calendar, start, target_seconds, pauses)
    return ClockState(target_seconds=target_seconds, elapsed_seconds=elapsed,
                      remaining_seconds=target_seconds - elapsed, due_at=due, paused=paused,
                      breached=elapsed >= target_seconds,
                      warning=elapsed >= warning_threshold * target_seconds)
