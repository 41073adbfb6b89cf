"""Contracts of the tickets service: commands it accepts and the views it answers with."""
from datetime import datetime
from typing import Annotated, Any, Literal, Optional

from pydantic import Field, StringConstraints

from . import Contract, EmailAddress, RecordId, View

Priority = Literal["low", "normal", "high", "urgent"]
Severity = Literal["minor", "moderate", "major", "critical"]
Visibility = Literal["public", "internal"]
Channel = Literal["api", "email", "web", "chat", "phone", "social"]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=r"^[\w][\w .:/-]*$")]
FieldName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,49}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class SocialHandle(Contract):
    platform: Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")]
    handle: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Requester(Contract):
    """Who asks. ``phone`` and ``social`` (optional) are further identifiers by which the tickets service
    finds the requester's contact: a call from a known number lands on that contact."""

    email: EmailAddress
    name: Optional[Annotated[str, StringConstraints(max_length=200)]] = None
    phone: Optional[Annotated[str, StringConstraints(min_length=3, max_length=40)]] = None
    social: Optional[SocialHandle] = None


class NewTicket(Contract):
    """What it takes to open a ticket."""

    subject: ShortText
    description: LongText
    requester: Requester
    priority: Priority = "normal"
    severity: Optional[Severity] = None
    channel: Channel = "api"
    team: Optional[Name] = None
    language: Optional[Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]] = None
    category: Optional[Name] = None
    tags: Annotated[list[Tag], Field(max_length=50)] = []
    custom_fields: dict[FieldName, Any] = {}


class TicketChanges(Contract):
    """A partial update: only the fields given are changed. ``null`` clears assignee or team."""

    status: Optional[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{0,29}$")]] = None
    priority: Optional[Priority] = None
    severity: Optional[Severity] = None
    assignee: Optional[Name] = None
    team: Optional[Name] = None
    tier: Optional[Annotated[int, Field(ge=1, le=9)]] = None
    tags: Optional[Annotated[list[Tag], Field(max_length=50)]] = None
    custom_fields: Optional[dict[FieldName, Any]] = None


class NewMessage(Contract):
    """A public reply (sent to the customer) or an internal note (agents only)."""

    body: LongText
    visibility: Visibility = "public"
    # Agents (their actor names, as in ``assignee``) named with @ in an internal note: each is notified.
    mentions: Annotated[list[Name], Field(max_length=20)] = []


TicketListView = Literal["mine", "team", "unassigned", "sla_at_risk", "sla_breached", "all"]


class TicketQuery(Contract):
    """A list view, filters, sort order and keyset pagination for listing tickets."""

    view: Optional[TicketListView] = None
    status: Optional[str] = None
    priority: Optional[Priority] = None
    assignee: Optional[str] = None
    team: Optional[str] = None
    channel: Optional[Channel] = None
    tag: Optional[Tag] = None
    requester: Optional[str] = None
    organisation: Optional[RecordId] = None  # tickets whose requester's contact is in this organisation
    text: Optional[Annotated[str, StringConstraints(max_length=200)]] = None
    sort: Literal["created", "updated", "priority", "sla_due"] = "created"
    limit: Annotated[int, Field(ge=1, le=100)] = 25
    cursor: Optional[Annotated[str, StringConstraints(max_length=40)]] = None


class TicketCounts(View):
    """How many tickets each list view holds for the caller (exact; the same limits as the lists)."""

    mine: int
    team: int
    unassigned: int
    sla_at_risk: int
    sla_breached: int
    all: int


TicketNumber = Annotated[str, StringConstraints(min_length=1, max_length=40)]


class TicketLinkRequest(Contract):
    """Link the ticket in the path to ``other`` (related tickets: both show the link)."""

    other: TicketNumber


class ProblemRequest(Contract):
    """Turn tickets with one cause (``incidents``, e.g. a group analytics found) into one problem: a new ticket
    they are linked to. ``requester``: who the problem ticket is filed for (default: the agent)."""

    subject: ShortText
    description: LongText
    incidents: Annotated[list[TicketNumber], Field(min_length=1, max_length=500)]
    requester: Optional[Requester] = None
    priority: Priority = "normal"
    team: Optional[Name] = None
    category: Optional[Name] = None


class ProblemLinkRequest(Contract):
    """Link more incidents to a problem."""

    incidents: Annotated[list[TicketNumber], Field(min_length=1, max_length=500)]


class ProblemUpdate(Contract):
    """One public update, sent to the customer of every open incident of a problem on their own channel."""

    body: LongText


class TicketMergeRequest(Contract):
    """Merge the ticket in the path (a duplicate) into ``into``, the ticket that survives."""

    into: TicketNumber


class LinkedTicket(View):
    """A ticket linked to another: ``kind`` related, merged_into / merged_from after a merge, or (problems) the
    linked ticket is an ``incident`` of this problem, or the ``problem`` this incident belongs to."""

    number: str
    subject: str
    status: str
    kind: Literal["related", "merged_into", "merged_from", "incident", "problem"]
    linked_at: datetime
    actor: str


StatusName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{0,29}$")]


class NewCannedReply(Contract):
    """A canned reply (macro): text with placeholders ({{customer_name}}, {{customer_email}},
    {{ticket_number}}, {{ticket_subject}}, {{agent_name}}), optionally setting status or priority when
    sent. ``shared``: for every agent (admins and supervisors make them); otherwise the author's own."""

    title: ShortText
    body: Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
    shared: bool = False
    status: Optional[StatusName] = None
    priority: Optional[Priority] = None


class CannedReplyView(View):
    id: int
    title: str
    body: str
    shared: bool
    owner: Optional[str] = None  # the author of a personal one; None for shared ones
    status: Optional[str] = None
    priority: Optional[str] = None
    created_at: datetime


class RenderedReply(View):
    """A canned reply filled in for one ticket: the text to insert, and what sending it sets."""

    id: int
    title: str
    body: str
    status: Optional[str] = None
    priority: Optional[str] = None


class NotificationView(View):
    """Something an agent should know about: a mention in a note, or a change to a ticket they follow."""

    id: int
    ticket_number: str
    kind: Literal["mention", "message", "change"]
    actor: str  # who did it
    detail: Any = None  # mention: the note's opening; message: its visibility; change: the fields changed
    created_at: datetime
    read: bool = False


class NotificationPage(View):
    items: list[NotificationView]
    unread: int


class NotificationsRead(Contract):
    """Mark notifications read: these ``ids``, or ``all`` of the caller's."""

    ids: Annotated[list[Annotated[int, Field(ge=1)]], Field(max_length=500)] = []
    all: bool = False


class FollowView(View):
    ticket_number: str
    following: bool
    followers: list[str]


class PresenceUpdate(Contract):
    """The caller has the ticket open (and is typing a reply, or not), or has closed it (``here: false``).
    ``typing`` left out keeps what the caller said last (false for a new arrival): the workspace's live
    stream says "still here" on the page's behalf without knowing whether its agent types."""

    typing: Optional[bool] = None
    here: bool = True


class PresentAgent(View):
    actor: str
    name: Optional[str] = None
    typing: bool
    seen_at: datetime


class TicketPresenceView(View):
    """The other agents who have the ticket open now (seen within the last seconds), and who types."""

    ticket_number: str
    others: list[PresentAgent]


class NewCustomField(Contract):
    """An admin's definition of a custom field that tickets may (or must) carry."""

    name: FieldName
    label: ShortText
    type: Literal["string", "number", "integer", "boolean", "enum", "date"]
    required: bool = False
    options: Annotated[list[ShortText], Field(max_length=200)] = []


class Viewer(Contract):
    """Who is asking. The gateway authenticates; the tickets service applies what they may see."""

    actor: Name
    role: Literal["admin", "agent", "customer", "system", "anonymous"]
    email: Optional[str] = None
    teams: list[str] = []
    correlation_id: Optional[str] = None


class OrganisationRef(View):
    """The organisation a requester's contact belongs to, as a ticket shows it (``contracts.organisations``)."""

    id: int
    name: str
    shared: bool = False


class RequesterView(View):
    email: str
    name: Optional[str] = None
    contact_id: Optional[int] = None  # None: the sender matched several contacts; an agent links one
    contact_ambiguous: bool = False
    organisation: Optional[OrganisationRef] = None  # the contact's organisation, if any


class SlaState(View):
    """A ticket's SLA clocks as they stand: due times, business seconds left (negative once late), paused
    while the ticket waits on the customer, breached once a target passed (even if met late)."""

    policy: Optional[str] = None
    first_response_due_at: Optional[datetime] = None
    first_response_remaining_seconds: Optional[float] = None
    first_response_breached: bool = False
    resolution_due_at: Optional[datetime] = None
    resolution_remaining_seconds: Optional[float] = None
    resolution_breached: bool = False
    paused: bool = False
    breached: bool = False


class TicketView(View):
    number: str
    subject: str
    description: str
    requester: RequesterView
    channel: str
    priority: str
    severity: Optional[str] = None
    status: str
    team: Optional[str] = None
    tier: int = 1
    assignee: Optional[str] = None
    language: Optional[str] = None
    category: Optional[str] = None
    tags: list[str] = []
    custom_fields: dict[str, Any] = {}
    version: int
    created_at: datetime
    updated_at: datetime
    first_response_at: Optional[datetime] = None
    resolved_at: Optional[datetime] = None
    closed_at: Optional[datetime] = None
    sla: Optional[SlaState] = None  # None: no SLA policy covers the ticket
    merged_into: Optional[str] = None  # the surviving ticket's number, once this one was merged into it
    # Customers only: true on their own requests, false on a colleague's that their shared organisation shows
    # them (they read it; replying, solving and reopening stay the requester's).
    yours: Optional[bool] = None


class MessageView(View):
    id: int
    ticket_number: str
    visibility: Visibility
    author: str
    author_role: str
    body: str
    created_at: datetime


class Change(View):
    field: str
    old: Any = None
    new: Any = None


class HistoryEntry(View):
    at: datetime
    actor: str
    field: str
    old: Any = None
    new: Any = None


class TicketPage(View):
    items: list[TicketView]
    next_cursor: Optional[str] = None


class CustomFieldView(View):
    name: str
    label: str
    type: str
    required: bool
    options: list[str] = []


# --- Events: the data of the tickets service's events (their catalogue: ``helpdesk_common.events``) -------

class TicketCreated(View):
    ticket: TicketView


class TicketUpdated(View):
    ticket: TicketView
    changes: list[Change]
    # Who changed it: a person, or a service ("routing" for its own decisions, "sla", "system"); a routing
    # decision made by hand names the person.
    actor: Optional[str] = None


class StatusChanged(View):
    ticket: TicketView
    from_status: str
    to_status: str


class MessageAdded(View):
    ticket: TicketView
    message: MessageView


class SlaClock(View):
    ticket_number: str
    metric: str  # first_response | resolution
    policy: Optional[str] = None
    priority: Optional[str] = None
    team: Optional[str] = None
    tier: int = 1
    target_seconds: int  # business seconds
    elapsed_seconds: float  # business seconds, pauses excluded
    remaining_seconds: float
    due_at: Optional[datetime] = None
    at: datetime


class SlaWarning(SlaClock):
    threshold: float  # the fraction of the target elapsed that triggers the warning


class SlaBreached(SlaClock):
    pass


class TicketsLinked(View):
    """Two tickets were linked as related (each shows the other), or an incident to its problem."""

    ticket_number: str
    other_number: str
    actor: str
    kind: Literal["related", "incident"] = "related"  # incident: ticket_number is the problem


class TicketPresenceChanged(View):
    """An agent opened or closed a ticket, or started or stopped typing a reply to it (not sent for each
    "still here"): what the workspace's collision warnings are pushed from."""

    ticket_number: str
    actor: str
    name: Optional[str] = None
    present: bool
    typing: bool


class AgentsNotified(View):
    """Notifications were written for these agents (``recipients``, actor names): a mention in an internal
    note, or a change to a ticket they follow. The notifications themselves are read with
    ``GET /api/v1/notifications`` by each recipient."""

    ticket_number: str
    kind: str  # mention | message | change
    recipients: list[str]


class TicketMerged(View):
    """``merged`` (a duplicate) was merged into ``survivor``: closed with a pointer (``merged_into``), its
    customer's messages copied to the survivor as internal notes. Carries both tickets after the merge."""

    merged: TicketView
    survivor: TicketView
    copied_messages: int
    actor: str


class CustomerResolution(Contract):
    """``POST /api/v1/tickets/{number}/resolution``: the customer says the request is solved (``true``: the
    workflow's resolved status) or not after all (``false``: reopened), as far as the workflow allows."""

    solved: bool


class ProblemIncident(View):
    number: str
    subject: str
    status: str
    channel: str


class ProblemView(View):
    """A problem ticket and its incidents (those the caller may see)."""

    problem: TicketView
    incidents: list[ProblemIncident]


class ProblemUpdateSent(View):
    problem: str
    sent_to: list[str]
