"""SLA policies and clocks: plain Python, no nameko, no database.

A *policy* gives a first-response and a resolution target, in business seconds, for tickets of one
priority (and optionally one team), measured on a business calendar (time zone, working days and
hours, holidays; :mod:`helpdesk_common.business_hours`). Policies are loaded from YAML in the shape
of the built-in ``tickets/sla.yaml``; an organisation gives its own with ``HELPDESK_SLA_FILE``.

A *clock* (one per ticket and metric, a row of ``sla_clocks``) starts when the ticket is opened. It
stops (``stopped_at``) when its goal is met: the first public reply of an agent (first response), the
ticket resolved or closed (resolution; for the first-response clock too, as nobody will answer a
closed ticket). While the ticket's status is in the ``pending`` category (waiting on the customer) it
is paused: the clock stands still, and when it runs again the due times move by the business time that
passed while paused. A reopened ticket's clocks run again from where they stopped.

Every function takes ``now`` (an aware datetime) explicitly: tests drive the clock without sleeping.
"""
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional

import yaml

from helpdesk_common.business_hours import Calendar, business_seconds, due_at
from helpdesk_common.contracts.routing import WorkingHours
from helpdesk_common.contracts.tickets import Priority

BUILT_IN = os.path.join(os.path.dirname(__file__), "sla.yaml")
# the calendar of a file that gives none: Monday to Friday, 09:00-17:00 UTC
OFFICE_HOURS = {"timezone": "UTC", "weekly": {day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}}
METRICS = ("first_response", "resolution")
PRIORITIES = Priority.__args__
_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$")


class SlaError(ValueError):
    """The SLA file is not valid: the service refuses to start with it."""


def parse_duration(value, where):
    """``"4h"``, ``"1h30m"``, ``"45m"``, ``"90s"`` (business time) as seconds; a bare number is hours."""
    if isinstance(value, bool):
        raise SlaError(f"{where}: {value!r} is not a duration such as '4h' or '30m'")
    if isinstance(value, (int, float)):
        seconds = float(value) * 3600
    else:
        match = _DURATION.match(str(value))
        if not match or not any(match.groups()):
            raise SlaError(f"{where}: {value!r} is not a duration such as '4h', '1h30m' or '45m'")
        hours, minutes, secs = (float(part or 0) for part in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    if seconds <= 0:
        raise SlaError(f"{where}: a target must be longer than zero")
    return int(round(seconds))


def _threshold(value, where):
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        raise SlaError(f"{where}: warning_threshold must be a number between 0 and 1") from None
    if not 0 < threshold <= 1:
        raise SlaError(f"{where}: warning_threshold must be above 0 and at most 1 (a fraction of the target)")
    return threshold


def _calendar(spec, where):
    from pydantic import ValidationError

    try:
        hours = WorkingHours.model_validate(spec or {}, strict=False)
    except ValidationError as error:
        raise SlaError(f"{where}: {error.errors(include_url=False)[0]['msg']}") from None
    calendar = Calendar.from_dict(hours.model_dump())
    if not any(calendar.weekly):
        raise SlaError(f"{where}: the calendar has no working hours at all")
    return calendar


@dataclass(frozen=True)
class Policy:
    """Targets (business seconds) for tickets of ``priority`` (any when None) in ``team`` (any when None)."""

    name: str
    targets: dict  # metric -> seconds
    calendar: Calendar
    warning_threshold: float
    priority: Optional[str] = None
    team: Optional[str] = None

    def matches(self, priority, team):
        return (self.priority is None or self.priority == priority) and (self.team is None or self.team == team)

    @property
    def specificity(self):
        return (self.team is not None) * 2 + (self.priority is not None)


@dataclass(frozen=True)
class SlaPolicies:
    """Every policy of the organisation; :meth:`policy_for` picks the one that applies to a ticket."""

    policies: tuple = ()
    warning_threshold: float = 0.8
    _by_name: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        self._by_name.update((p.name, p) for p in self.policies)

    @classmethod
    def from_dict(cls, spec):
        """Build and check policies; a mistake in the file stops the service at start-up."""
        if not isinstance(spec, dict) or not isinstance(spec.get("policies"), list) or not spec["policies"]:
            raise SlaError("the SLA file needs a non-empty list 'policies'")
        threshold = _threshold(spec.get("warning_threshold", 0.8), "warning_threshold")
        calendars = {"default": _calendar(spec.get("calendar") or OFFICE_HOURS, "calendar")}
        for name, item in (spec.get("calendars") or {}).items():
            calendars[str(name)] = _calendar(item, f"calendars.{name}")
        policies, seen = [], set()
        for index, item in enumerate(spec["policies"]):
            where = f"policies[{index}]"
            if not isinstance(item, dict):
                raise SlaError(f"{where}: a policy is a mapping with name, priority, first_response, resolution")
            unknown = set(item) - {"name", "priority", "team", "first_response", "resolution", "calendar",
                                   "warning_threshold"}
            if unknown:
                raise SlaError(f"{where}: unknown keys {sorted(unknown)}")
            name = str(item.get("name") or f"policy-{index + 1}")
            if name in seen:
                raise SlaError(f"{where}: two policies are named {name!r}")
            seen.add(name)
            priority = item.get("priority")
            if priority is not None and priority not in PRIORITIES:
                raise SlaError(f"{where}: priority {priority!r} is not one of {list(PRIORITIES)}")
            missing = [metric for metric in METRICS if metric not in item]
            if missing:
                raise SlaError(f"{where}: missing {missing}")
            calendar = item.get("calendar", "default")
            if isinstance(calendar, dict):
                calendar = _calendar(calendar, f"{where}.calendar")
            elif str(calendar) in calendars:
                calendar = calendars[str(calendar)]
            else:
                raise SlaError(f"{where}: unknown calendar {calendar!r} (known: {sorted(calendars)})")
            policies.append(Policy(
                name=name, priority=priority, team=item.get("team"), calendar=calendar,
                targets={metric: parse_duration(item[metric], f"{where}.{metric}") for metric in METRICS},
                warning_threshold=_threshold(item.get("warning_threshold", threshold), f"{where}.warning_threshold"),
            ))
        return cls(policies=tuple(policies), warning_threshold=threshold)

    @classmethod
    def load(cls, path=None):
        """The policies in ``path``, or the built-in ones."""
        with open(path or BUILT_IN) as stream:
            return cls.from_dict(yaml.safe_load(stream))

    def policy_for(self, priority, team=None) -> Optional[Policy]:
        """The most specific policy for this priority and team (team beats priority; file order breaks ties)."""
        best = None
        for policy in self.policies:
            if policy.matches(priority, team) and (best is None or policy.specificity > best.specificity):
                best = policy
        return best

    def named(self, name) -> Optional[Policy]:
        return self._by_name.get(name)


# --- clocks ---------------------------------------------------------------------------------------

def _parse(moment):
    return datetime.fromisoformat(moment) if isinstance(moment, str) else moment


def pauses_of(clock):
    """The clock's closed pauses as (start, end) datetimes."""
    return [(_parse(begin), _parse(end)) for begin, end in (clock.pauses or [])]


def _add_pause(clock, begin, end):
    if end > begin:
        clock.pauses = [*(clock.pauses or []), [begin.isoformat(), end.isoformat()]]


def schedule(clock, policy: Policy):
    """Set the clock's target and due times from ``policy``, its start and its closed pauses."""
    clock.policy = policy.name
    clock.target_seconds = policy.targets[clock.metric]
    pauses = pauses_of(clock)
    clock.due_at = due_at(policy.calendar, clock.started_at, clock.target_seconds, pauses)
    clock.warn_at = due_at(policy.calendar, clock.started_at, clock.target_seconds * policy.warning_threshold, pauses)


def elapsed(clock, policy: Policy, now):
    """Business seconds the clock has counted up to ``now`` (pauses and time after its stop excluded)."""
    until = min(x for x in (now, clock.paused_at, clock.stopped_at) if x is not None)
    return business_seconds(policy.calendar, clock.started_at, until, pauses_of(clock))


def goal_reached(metric, first_response_at, category):
    """When the clock's goal was met, as far as the ticket tells: a moment, True (just now), or None."""
    if metric == "first_response" and first_response_at is not None:
        return first_response_at
    if category in ("resolved", "closed"):
        return True
    return None


def sync(clock, policy: Policy, *, first_response_at, category, now):
    """Bring one clock in line with its ticket (status category, first response, policy).

    Returns what happened to it: ``"stopped"``, ``"paused"``, ``"resumed"``, ``"rescheduled"`` or None.
    Called after every change of a ticket; calling it again with the same state changes nothing.
    """
    happened = None
    goal = goal_reached(clock.metric, first_response_at, category)
    stop_at = (now if goal is True else min(goal, now)) if goal is not None else None
    want_pause = goal is None and category == "pending"
    rescheduled = clock.policy != policy.name or clock.target_seconds != policy.targets[clock.metric]
    # leave a state the ticket is no longer in: a pause ends, a stopped clock (reopened) runs again
    if clock.paused_at is not None and not want_pause:
        if stop_at is not None and stop_at <= clock.paused_at:
            stop_at = clock.paused_at
        _add_pause(clock, clock.paused_at, stop_at or now)
        clock.paused_at = None
        rescheduled, happened = True, "resumed"
    if clock.stopped_at is not None and goal is None:
        _add_pause(clock, clock.stopped_at, now)  # the time it stood resolved does not count
        clock.stopped_at = None
        rescheduled, happened = True, "resumed"
    if rescheduled:
        schedule(clock, policy)
        happened = happened or "rescheduled"
    # enter the state the ticket is in now
    if stop_at is not None and clock.stopped_at is None:
        clock.stopped_at = stop_at
        clock.elapsed_seconds = elapsed(clock, policy, stop_at)
        happened = "stopped"
    elif want_pause and clock.paused_at is None:
        clock.paused_at = now
        clock.elapsed_seconds = elapsed(clock, policy, now)
        happened = "paused"
    return happened


def remaining(clock, policy: Policy, now):
    """Business seconds left before the target (negative once past it)."""
    if clock.stopped_at is not None or clock.paused_at is not None:
        return float(clock.target_seconds) - float(clock.elapsed_seconds or 0)
    if clock.due_at is None:
        return None
    if now <= clock.due_at:
        return business_seconds(policy.calendar, now, clock.due_at)
    return -business_seconds(policy.calendar, clock.due_at, now)


def breached(clock, now):
    """Whether the clock passed its target (recorded by the timer, or visible already)."""
    if clock.breached_at is not None:
        return True
    if clock.stopped_at is not None or clock.paused_at is not None:
        return float(clock.elapsed_seconds or 0) >= clock.target_seconds
    return clock.due_at is not None and clock.due_at <= now


def state(clocks, policies: SlaPolicies, now):
    """The SLA object of the ticket view, from its clocks (None when no policy applies)."""
    by_metric = {clock.metric: clock for clock in clocks}
    if not by_metric:
        return None
    view = {"policy": None, "paused": False, "breached": False}
    for metric in METRICS:
        clock = by_metric.get(metric)
        policy = policies.named(clock.policy) if clock is not None else None
        if clock is None or policy is None:
            view.update({f"{metric}_due_at": None, f"{metric}_remaining_seconds": None,
                         f"{metric}_breached": False})
            continue
        view["policy"] = policy.name
        left = remaining(clock, policy, now)
        late = breached(clock, now)
        view.update({
            f"{metric}_due_at": clock.due_at.isoformat() if clock.due_at is not None else None,
            f"{metric}_remaining_seconds": round(left, 3) if left is not None else None,
            f"{metric}_breached": late,
        })
        view["paused"] = view["paused"] or clock.paused_at is not None
        view["breached"] = view["breached"] or late
    return view
