"""The agents' ticket lists as query shapes: views, filters, sort orders, keyset cursors and counts.

Plain functions that build SQLAlchemy statements; ``domain.find_tickets`` and ``domain.count_tickets`` run
them inside the viewer's visibility (``domain._visible``), so every list and count obeys the same limits.

Views (what an agent works from):
- ``mine``: assigned to the viewer; ``team``: in one of the viewer's teams; ``unassigned``: nobody's yet.
  These three hold the work still to do (status not resolved or closed) unless a status filter says
  otherwise;
- ``sla_at_risk``: a running SLA clock past its warning time but not yet due; ``sla_breached``: a clock
  that is not stopped and has passed its target (recorded by the timer, or due already and not paused);
- ``all`` (or none): everything the viewer may see.

Keyset cursors are opaque to clients but readable here: ``<id>`` (created, the default, unchanged from
before sorts existed), ``u<microseconds>.<id>`` (updated), ``p<rank>.<id>`` (priority),
``s<microseconds or ->.<id>`` (SLA due). A row inserted or changed while someone pages moves above the
cursor, so no page repeats or skips a ticket that stayed in place.
"""
import json
from datetime import datetime, timedelta, timezone

from sqlalchemy import Text, and_, cast, exists, func, literal, or_, select, tuple_
from sqlalchemy.orm import aliased

from helpdesk_common.errors import Forbidden, ValidationFailed

from . import organisations
from .models import SlaClock, Ticket

VIEWS = ("mine", "team", "unassigned", "sla_at_risk", "sla_breached", "all")
NARROW_VIEWS = ("mine",)  # one person's open work: a few tickets, found by their own index
SORTS = ("created", "updated", "priority", "sla_due")
PRIORITY_RANKS = {"urgent": 3, "high": 2, "normal": 1, "low": 0}
DONE = ("resolved", "closed")  # status categories of work that is finished
STAFF_ONLY = ("sla_at_risk", "sla_breached", "sla_due")  # SLA targets are the team's, not the customer's
NEVER = datetime(9999, 12, 31, tzinfo=timezone.utc)  # where tickets without a running clock sort
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def bad_cursor():
    return ValidationFailed("The cursor is not one this API gave out; start again without it.",
                            details=[{"field": "cursor", "code": "invalid_format",
                                      "message": "use next_cursor from the previous page"}])


def check_staff(query, viewer, staff_roles):
    for asked in (query.view, query.sort):
        if asked in STAFF_ONLY and viewer.role not in staff_roles:
            raise Forbidden("SLA views and the SLA sort are for agents only.", code="agents_only")


def open_statuses(workflow):
    return [name for name in workflow.statuses if workflow.category(name) not in DONE]


def sla_at_risk(now):
    """Ids of tickets with a running clock between its warning and its target."""
    return select(SlaClock.ticket_id).where(*_at_risk(now))


def _at_risk(now):
    return (SlaClock.warn_at <= now, SlaClock.due_at > now, SlaClock.stopped_at.is_(None),
            SlaClock.paused_at.is_(None), SlaClock.breached_at.is_(None))


def sla_breached(now):
    """Ids of tickets with a clock not stopped and past its target."""
    return select(SlaClock.ticket_id).where(*_breached(now))


def _breached(now, clock=SlaClock):
    return (clock.stopped_at.is_(None),
            or_(clock.breached_at.is_not(None), and_(clock.paused_at.is_(None), clock.due_at <= now)))


def view_condition(view, viewer, workflow, now, status_given=False, counting=False):
    """The WHERE clause of one view for ``viewer`` (None: no condition).

    The SLA views differ in shape on purpose. "At risk" is a narrow window (few tickets): their ids are
    gathered first from the running clocks' index. "Breached" can be a large share of the open tickets: a
    page walks the sort order and checks each ticket's clocks (by its unique ticket/metric key), stopping
    once the page is full; only a count gathers all of their ids."""
    if view in (None, "all"):
        return None
    if view == "sla_at_risk":
        return Ticket.id.in_(sla_at_risk(now))
    if view == "sla_breached":
        if counting:
            return Ticket.id.in_(sla_breached(now))
        # its own alias of the clocks: the SLA-due sort joins the clocks too, and the check must not
        # correlate with that join (it did: "returned no FROM clauses", a 500 for breached by SLA due)
        clock = aliased(SlaClock)
        return exists(select(clock.id).where(clock.ticket_id == Ticket.id, *_breached(now, clock)))
    condition = {"mine": lambda: Ticket.assignee == viewer.actor,
                 "team": lambda: Ticket.team.in_(list(viewer.teams)),
                 "unassigned": lambda: Ticket.assignee.is_(None)}[view]()
    if status_given:
        return condition
    return and_(condition, Ticket.status.in_(open_statuses(workflow)))


def filter_conditions(query):
    """The filters of a TicketQuery (view, sort and cursor apart) as WHERE clauses."""
    conditions = []
    for name in ("status", "priority", "assignee", "team", "channel"):
        value = getattr(query, name, None)
        if value:
            conditions.append(getattr(Ticket, name) == value)
    if query.tag:
        conditions.append(has_tag(query.tag))
    if getattr(query, "organisation", None):
        conditions.append(Ticket.requester_id.in_(organisations.members_of(query.organisation)))
    if query.text:
        pattern = "%" + _escape_like(query.text) + "%"
        conditions.append(or_(Ticket.subject.ilike(pattern, escape="\\"),
                              Ticket.description.ilike(pattern, escape="\\")))
    return conditions


def has_tag(tag):
    """Tickets carrying ``tag``. Tags are a JSON list of strings, stored as the serializer wrote them
    (``["a", "b"]``), and a tag cannot contain a quote: the quoted tag matches whole tags only, on
    SQLite and PostgreSQL alike. Not indexed: combine it with a view or another filter on large sets."""
    return cast(Ticket.tags, Text).like("%" + _escape_like(json.dumps(tag)) + "%", escape="\\")


def _escape_like(text):
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _micros(moment):
    return (moment - EPOCH) // timedelta(microseconds=1)  # exact: no float rounding of the microseconds


def parse_cursor(sort, cursor):
    """(key, id) from a cursor of ``sort``; a cursor of another sort or a made-up one is refused."""
    if not cursor:
        return None
    prefix = {"created": "", "updated": "u", "priority": "p", "sla_due": "s"}[sort]
    if not cursor.isascii() or not cursor.startswith(prefix):
        raise bad_cursor()
    body = cursor[len(prefix):]
    if sort == "created":
        key, _, id_text = None, None, body
    else:
        key, dot, id_text = body.partition(".")
        if not dot:
            raise bad_cursor()
    if not (id_text.isdigit() and len(id_text) <= 18):
        raise bad_cursor()
    if sort == "updated" or (sort == "sla_due" and key != "-"):
        if not (key.isdigit() and len(key) <= 17):
            raise bad_cursor()
        key = EPOCH + timedelta(microseconds=int(key))
    elif sort == "sla_due":
        key = NEVER
    elif sort == "priority":
        if key not in ("0", "1", "2", "3"):
            raise bad_cursor()
        key = int(key)
    return key, int(id_text)


def sorted_page(session, statement, sort, cursor, limit, narrow=False):
    """The rows of ``statement`` in ``sort`` order after ``cursor``, at most ``limit + 1`` (one more tells
    that a next page exists), and a function that makes the cursor of a row. ``narrow``: the view's own
    condition selects a few tickets (one person's open work), so its index should find them rather than
    the priority index walking every ticket of a priority."""
    position = parse_cursor(sort, cursor)
    if sort == "created":
        if position:
            statement = statement.where(Ticket.id < position[1])
        rows = list(session.scalars(statement.order_by(Ticket.id.desc()).limit(limit + 1)))
        return rows, lambda t: str(t.id)
    if sort == "updated":
        if position:
            statement = statement.where(tuple_(Ticket.updated_at, Ticket.id)
                                        < tuple_(literal(position[0], Ticket.updated_at.type), literal(position[1])))
        rows = list(session.scalars(statement.order_by(Ticket.updated_at.desc(), Ticket.id.desc())
                                    .limit(limit + 1)))
        return rows, lambda t: f"u{_micros(t.updated_at)}.{t.id}"
    if sort == "priority":
        return _by_priority(session, statement, position, limit, narrow), \
            lambda t: f"p{PRIORITY_RANKS.get(t.priority, 0)}.{t.id}"
    return _by_sla_due(session, statement, position, limit)


def _by_sla_due(session, statement, position, limit):
    """The soonest SLA target first, then the tickets with no running clock (newest first).

    The first part walks the running clocks' partial index (``ix_sla_clocks_running_due_at``) in due
    order, each ticket at its earliest running clock, and stops once the page is full: no sort of every
    ticket by a computed time. The second part starts when the clocks run out (cursor ``s-.<id>``)."""
    dues = {}
    rows = []
    if position is None or position[0] < NEVER:
        earliest = (select(func.min(SlaClock.due_at)).where(SlaClock.ticket_id == Ticket.id,
                                                            SlaClock.stopped_at.is_(None))
                    .correlate(Ticket).scalar_subquery())
        part = (statement.join(SlaClock, and_(SlaClock.ticket_id == Ticket.id, SlaClock.stopped_at.is_(None)))
                .where(SlaClock.due_at == earliest).add_columns(SlaClock.due_at))
        if position:
            part = part.where(tuple_(SlaClock.due_at, Ticket.id)
                              > tuple_(literal(position[0], SlaClock.due_at.type), literal(position[1])))
        for ticket, due in session.execute(part.order_by(SlaClock.due_at, Ticket.id).limit(limit + 1)):
            if ticket.id not in dues:  # two clocks of one ticket due at the same moment: the ticket once
                dues[ticket.id] = due
                rows.append(ticket)
    if len(rows) <= limit:
        rest = statement.where(~exists(select(SlaClock.id).where(
            SlaClock.ticket_id == Ticket.id, SlaClock.stopped_at.is_(None), SlaClock.due_at.is_not(None))))
        if position and position[0] >= NEVER:
            rest = rest.where(Ticket.id < position[1])
        rows += session.scalars(rest.order_by(Ticket.id.desc()).limit(limit + 1 - len(rows)))

    def sla_cursor(ticket):
        due = dues.get(ticket.id)
        return f"s{_micros(due) if due is not None else '-'}.{ticket.id}"
    return rows, sla_cursor


def _by_priority(session, statement, position, limit, narrow=False):
    """Urgent first, newest first within a priority: one indexed query per priority (``priority, id``),
    rather than sorting every row by a computed rank. ``narrow``: the priority in a form no index serves,
    so the view's index drives ("mine" of an agent with few open tickets walked each priority's index to
    its end: 123 ms at 100,000 tickets)."""
    rows = []
    start_rank = position[0] if position else 3
    priority_of = func.coalesce(Ticket.priority, "") if narrow else Ticket.priority
    for priority, rank in sorted(PRIORITY_RANKS.items(), key=lambda item: -item[1]):
        if rank > start_rank:
            continue
        part = statement.where(priority_of == priority)
        if position and rank == start_rank:
            part = part.where(Ticket.id < position[1])
        rows += session.scalars(part.order_by(Ticket.id.desc()).limit(limit + 1 - len(rows)))
        if len(rows) > limit:
            break
    return rows


def counts(session, visible, viewer, workflow, now, views=VIEWS):
    """Exact number of tickets in each view: one COUNT per view, each on an index (assignee/team with
    status, team included; the running clocks' indexes for the SLA views). ``visible(statement,
    by_index=True)`` limits a statement to the viewer's tickets.

    The SLA views start from the running clocks (few: a tenth of the tickets at most, once most are
    solved) and count their distinct tickets; for a viewer limited to teams each of those tickets' team is
    then checked by its row, in a form no index serves (``by_index=False``), so that the database does not
    start from every ticket of the viewer's teams instead (it did, without statistics: "at risk" read
    25,000 tickets to find 24 at 100,000 tickets; ``bench/README.md``). Checked with EXPLAIN QUERY PLAN in
    ``tests/test_ticket_lists.py``."""
    answer = {}
    sees_everything = visible(select(Ticket)).whereclause is None
    for view in views:
        if view == "team" and not viewer.teams:
            answer[view] = 0
            continue
        if view in ("sla_at_risk", "sla_breached"):
            statement = (select(func.count(func.distinct(SlaClock.ticket_id)))
                         .where(*(_at_risk if view == "sla_at_risk" else _breached)(now)))
            if not sees_everything:
                statement = visible(statement.join(Ticket, Ticket.id == SlaClock.ticket_id), by_index=False)
            answer[view] = session.scalar(statement)
            continue
        statement = visible(select(func.count()).select_from(Ticket))
        condition = view_condition(view, viewer, workflow, now, counting=True)
        if condition is not None:
            statement = statement.where(condition)
        answer[view] = session.scalar(statement)
    return answer
