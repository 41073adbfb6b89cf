"""Contracts of the routing service: agents, teams, routing rules, presence, assignment, escalation.

An agent's skills are a map of skill name to level (1 = basic ... 5 = expert); a rule that requires
``{"vpn": 3}`` accepts agents with ``vpn`` at level 3 or more. Working hours are a weekly timetable in
the agent's own time zone: ``{"timezone": "Europe/Stockholm", "weekly": {"mon": ["09:00-17:00"], ...},
"holidays": ["2026-12-24"]}``; a day absent from ``weekly`` is not worked; ``24:00`` ends a day (a night
shift is two intervals: ``"22:00-24:00"`` and the next day's ``"00:00-06:00"``). No working hours: always.
"""
import re
from datetime import date, datetime
from typing import Annotated, Any, Literal, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, StringConstraints, field_validator, model_validator

from . import Contract, EmailAddress, RecordId, View
from .tickets import Priority, Viewer

__all__ = [
    "Presence", "Strategy", "Weekday", "WEEKDAYS", "WorkingHours", "NewAgent", "AgentChanges", "PresenceChange",
    "NewTeam", "TeamChanges", "RuleConditions", "RuleActions", "NewRule", "ManualAssignment", "Escalation",
    "AgentView", "TeamView", "RuleView", "AssignmentView", "RoutedTicketView", "QueueQuery", "Viewer",
]

Presence = Literal["online", "away", "offline"]
Strategy = Literal["round_robin", "least_loaded", "skills_and_load"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
TeamName = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[\w][\w .:/-]*$")]
SkillName = Annotated[str, StringConstraints(min_length=1, max_length=50, to_lower=True,
                                             pattern=r"^[\w][\w .:/+#-]*$")]
Level = Annotated[int, Field(ge=1, le=5)]
Tier = Annotated[int, Field(ge=1, le=9)]
Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]
Interval = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$|"
                                                    r"^([01]\d|2[0-3]):[0-5]\d-24:00$")]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Word = Annotated[str, StringConstraints(min_length=1, max_length=100)]
FieldName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,49}$")]


def _minutes(text):
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


class WorkingHours(Contract):
    """A weekly timetable in one time zone, with days off. Also the shape of a business calendar."""

    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "UTC"
    weekly: dict[Weekday, Annotated[list[Interval], Field(max_length=10)]] = {}
    holidays: Annotated[list[date], Field(max_length=1000)] = []

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value):
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a known time zone (e.g. Europe/Amsterdam)") from None
        return value

    @field_validator("weekly")
    @classmethod
    def _ordered(cls, weekly):
        for day, intervals in weekly.items():
            spans = sorted((_minutes(i[:5]), _minutes(i[6:])) for i in intervals)
            for start, end in spans:
                if end <= start:
                    raise ValueError(f"{day}: an interval must end after it starts (split a night shift)")
            for (_, end), (start, _) in zip(spans, spans[1:]):
                if start < end:
                    raise ValueError(f"{day}: intervals overlap")
        return weekly


class NewAgent(Contract):
    """An agent: who they are, what they know, where they work and how much they can take."""

    name: Name
    email: EmailAddress
    languages: Annotated[list[Language], Field(max_length=20)] = []
    skills: Annotated[dict[SkillName, Level], Field(max_length=100)] = {}
    teams: Annotated[list[TeamName], Field(max_length=20)] = []
    tier: Tier = 1
    capacity: Annotated[int, Field(ge=0, le=1000)] = 10
    presence: Presence = "offline"
    working_hours: Optional[WorkingHours] = None


class AgentChanges(Contract):
    """A partial update of an agent: only the fields given change (``working_hours: null`` = always)."""

    name: Optional[Name] = None
    email: Optional[EmailAddress] = None
    languages: Optional[Annotated[list[Language], Field(max_length=20)]] = None
    skills: Optional[Annotated[dict[SkillName, Level], Field(max_length=100)]] = None
    teams: Optional[Annotated[list[TeamName], Field(max_length=20)]] = None
    tier: Optional[Tier] = None
    capacity: Optional[Annotated[int, Field(ge=0, le=1000)]] = None
    working_hours: Optional[WorkingHours] = None


class PresenceChange(Contract):
    presence: Presence


class NewTeam(Contract):
    """A team with its queue. ``escalates_to`` names the team that takes what this one escalates;
    without it, escalation goes to the next tier within the same team."""

    name: TeamName
    tier: Tier = 1
    strategy: Strategy = "skills_and_load"
    escalates_to: Optional[TeamName] = None
    description: Optional[Annotated[str, StringConstraints(max_length=500)]] = None


class TeamChanges(Contract):
    tier: Optional[Tier] = None
    strategy: Optional[Strategy] = None
    escalates_to: Optional[TeamName] = None
    description: Optional[Annotated[str, StringConstraints(max_length=500)]] = None


class RuleConditions(Contract):
    """What a ticket must look like for a rule to apply. Every condition given must hold; within a
    list any value may match. ``words``: any of them, as a whole word, in the subject or description
    (case-insensitive). ``custom_fields``: each field equals the value (or one of a list of values)."""

    channels: Annotated[list[Name], Field(max_length=20)] = []
    mailboxes: Annotated[list[Annotated[str, StringConstraints(max_length=254)]], Field(max_length=50)] = []
    categories: Annotated[list[Name], Field(max_length=50)] = []
    languages: Annotated[list[Language], Field(max_length=20)] = []
    priorities: Annotated[list[Priority], Field(max_length=4)] = []
    requester_domains: Annotated[list[Annotated[str, StringConstraints(max_length=254, to_lower=True)]],
                                 Field(max_length=100)] = []
    custom_fields: Annotated[dict[FieldName, Any], Field(max_length=20)] = {}
    words: Annotated[list[Word], Field(max_length=100)] = []


class RuleActions(Contract):
    """What a matching rule decides. At least one action."""

    team: Optional[TeamName] = None
    tier: Optional[Tier] = None
    required_skills: Annotated[dict[SkillName, Level], Field(max_length=20)] = {}
    priority: Optional[Priority] = None

    @model_validator(mode="after")
    def _something(self):
        if not (self.team or self.tier or self.required_skills or self.priority):
            raise ValueError("a rule must decide at least one of team, tier, required_skills, priority")
        return self


class NewRule(Contract):
    """A routing rule. Rules are tried in ``position`` order; the first that matches decides.
    Without ``position`` the rule goes last."""

    name: Name
    position: Optional[Annotated[int, Field(ge=1, le=100_000)]] = None
    enabled: bool = True
    conditions: RuleConditions = RuleConditions()
    actions: RuleActions


class RuleChanges(Contract):
    """A routing rule changed in place (``PATCH``): only the fields given change. ``conditions`` and
    ``actions`` replace the rule's whole conditions or actions; ``position`` moves the rule there (1 is
    tried first; beyond the last: last), the rules in between shift by one, so the order stays 1..n."""

    name: Optional[Name] = None
    position: Optional[Annotated[int, Field(ge=1, le=100_000)]] = None
    enabled: Optional[bool] = None
    conditions: Optional[RuleConditions] = None
    actions: Optional[RuleActions] = None


class ManualAssignment(Contract):
    """Assign (or reassign) a ticket to an agent by hand; the reason is recorded."""

    agent_id: RecordId
    reason: Reason


class RoutingChanges(Contract):
    """A ticket's assignee, team or tier set by hand (what a ticket PATCH gives of them); only the fields
    given change. ``assignee`` null puts the ticket back in its team's queue."""

    assignee: Optional[Annotated[str, StringConstraints(min_length=1, max_length=100)]] = None
    team: Optional[Annotated[str, StringConstraints(min_length=1, max_length=100)]] = None  # as tickets take it
    tier: Optional[Annotated[int, Field(ge=1, le=9)]] = None


class HandRouted(View):
    """What routing decided for a change made by hand: where the ticket stands, and the decisions
    announced (their event envelopes, for the tickets service to apply at once)."""

    routing: "RoutedTicketView"
    decisions: list[dict[str, Any]]


class Escalation(Contract):
    """Escalate a ticket along its team's escalation path (or to ``to_team``); the reason is recorded."""

    reason: Reason
    to_team: Optional[TeamName] = None


class QueueQuery(Contract):
    team: Optional[TeamName] = None
    limit: Annotated[int, Field(ge=1, le=500)] = 100


class AgentView(View):
    id: int
    name: str
    email: str
    languages: list[str] = []
    skills: dict[str, int] = {}
    teams: list[str] = []
    tier: int
    capacity: int
    load: int
    presence: Presence
    working_hours: Optional[dict[str, Any]] = None
    assignee: str
    created_at: datetime
    updated_at: datetime


class TeamView(View):
    name: str
    tier: int
    strategy: Strategy
    escalates_to: Optional[str] = None
    description: Optional[str] = None
    queued: int = 0


class RuleView(View):
    id: int
    name: str
    position: int
    enabled: bool
    conditions: dict[str, Any]
    actions: dict[str, Any]


class AssignmentView(View):
    id: int
    ticket_number: str
    agent_id: int
    assignee: str
    team: Optional[str] = None
    tier: int
    at: datetime
    reason: str
    actor: str


class RoutedTicketView(View):
    number: str
    state: Literal["queued", "assigned", "released"]
    team: Optional[str] = None
    tier: int
    priority: str
    language: Optional[str] = None
    required_skills: dict[str, int] = {}
    agent_id: Optional[int] = None
    assignee: Optional[str] = None
    queued_at: Optional[datetime] = None
    created_at: datetime
    reopen_count: int = 0


def assignee_ref(agent_id):
    """How tickets name an agent in their ``assignee`` field."""
    return f"agent-{agent_id}"


def agent_id_of(assignee):
    """The agent id in an ``assignee`` value made by :func:`assignee_ref`, else None."""
    match = re.fullmatch(r"agent-(\d+)", assignee or "")
    return int(match.group(1)) if match else None


# --- Events: the data of the routing service's events (their catalogue: ``helpdesk_common.events``) -------

class AgentRef(View):
    id: int
    name: str
    email: str
    assignee: str  # how the ticket names the agent in its ``assignee`` field: "agent-<id>"


class TicketAssigned(View):
    ticket_number: str
    assignee: str
    agent: Optional[AgentRef] = None  # null: an assignee set by hand who is not one of routing's agents
    team: Optional[str] = None
    tier: int = 1
    priority: Optional[str] = None  # the priority after routing (a rule may raise it)
    language: Optional[str] = None  # given with the ticket or detected by routing
    reason: str
    rule: Optional[str] = None
    manual: bool = False
    previous_assignee: Optional[str] = None
    assigned_at: datetime
    sequence: Optional[int] = None  # routing's decisions about one ticket, numbered 1, 2, ... in the order made
    actor: Optional[str] = None  # who decided: "routing", or the person who set it by hand


class TicketQueued(View):
    ticket_number: str
    team: Optional[str] = None
    tier: int = 1
    priority: Optional[str] = None
    language: Optional[str] = None
    required_skills: dict[str, int] = {}
    reason: str
    rule: Optional[str] = None
    previous_assignee: Optional[str] = None
    queued_at: datetime
    sequence: Optional[int] = None
    actor: Optional[str] = None


class TicketEscalated(View):
    ticket_number: str
    from_team: Optional[str] = None
    to_team: Optional[str] = None
    from_tier: int
    to_tier: int
    trigger: str  # manual | sla_breach | urgent_priority | reopened
    reason: str
    actor: str
    escalated_at: datetime
    sequence: Optional[int] = None
