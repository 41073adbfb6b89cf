"""Problems: many tickets with one cause handled as one. Plain functions of a session (no nameko).

A problem is an ordinary ticket (tagged ``problem``) that incidents are linked to: ``TicketLink`` rows of kind
``incident`` (on the problem, pointing to each incident) and ``problem`` (on each incident, pointing back), the
same links ``links`` writes for related tickets. So the tickets service stays the one owner of the fact; analytics
only proposes the groups (its ``spike_detected`` events and similar-ticket groups).

- One update to all: a public reply on each open incident, so each customer gets it on their own channel (intake
  sends public replies as it does any agent's).
- Solving the problem solves its open incidents (``Rules.problem_solves_incidents``, on by default): each moves to
  the first resolved status its workflow allows from where it is; one that cannot (closed, or no such step) is
  left as it is and named in the problem's history.
"""
from sqlalchemy import select

from helpdesk_common.contracts.tickets import NewMessage, NewTicket, TicketChanges
from helpdesk_common.errors import Conflict, ValidationFailed
from helpdesk_common.events import new_event
from helpdesk_common.database import utcnow
from helpdesk_common.outbox import stage

from . import domain
from .links import _add_link, _staff_only
from .models import Outbox, Ticket, TicketLink

TAG = "problem"
PROBLEM, INCIDENT = "problem", "incident"


def _incidents_of(session, problem):
    return list(session.scalars(select(Ticket).join(TicketLink, TicketLink.other_id == Ticket.id)
                                .where(TicketLink.ticket_id == problem.id, TicketLink.kind == INCIDENT)
                                .order_by(Ticket.id)))


def _problem_of(session, ticket):
    return session.scalar(select(Ticket).join(TicketLink, TicketLink.other_id == Ticket.id)
                          .where(TicketLink.ticket_id == ticket.id, TicketLink.kind == PROBLEM))


def create_problem(session, command, viewer, rules, now=None):
    """Open a problem ticket and link ``command.incidents`` to it; answers :func:`problem_view`."""
    _staff_only(viewer)
    requester = command.requester
    if requester is None:
        if not viewer.email:
            raise ValidationFailed("Say who the problem ticket is for (requester), or ask as a person with an email.",
                                   code="requester_needed", details=[{"field": "requester", "code": "missing"}])
        requester = {"email": viewer.email, "name": viewer.actor}
    else:
        requester = requester.model_dump(exclude_none=True)
    for number in command.incidents:
        domain.find_ticket(session, number, viewer)  # each one the viewer may see, or a 404 before anything
    ticket = NewTicket(subject=command.subject, description=command.description, requester=requester,
                       priority=command.priority, channel="api", team=command.team, category=command.category,
                       tags=[TAG])
    view, _ = domain.open_ticket(session, ticket, viewer, rules, now=now)
    return link_incidents(session, view["number"], command.incidents, viewer, rules, now)


def link_incidents(session, number, incidents, viewer, rules, now=None):
    """Link ``incidents`` to the problem ``number`` (linking again changes nothing). An incident of another
    problem, or a problem as an incident, is refused."""
    _staff_only(viewer)
    now = now or utcnow()
    problem = domain.find_ticket(session, number, viewer, for_update=True)
    if _problem_of(session, problem) is not None:
        raise Conflict(f"Ticket {problem.number} is an incident of another problem; it cannot be a problem itself.",
                       code="incident_not_problem")
    for other in dict.fromkeys(incidents):
        incident = domain.find_ticket(session, other, viewer, for_update=True)
        if incident.id == problem.id:
            raise ValidationFailed("A problem cannot be its own incident.", code="same_ticket",
                                   details=[{"field": "incidents", "code": "same_ticket"}])
        current = _problem_of(session, incident)
        if current is not None and current.id != problem.id:
            raise Conflict(f"Ticket {incident.number} is already an incident of problem {current.number}.",
                           code="already_incident")
        if _incidents_of(session, incident):
            raise Conflict(f"Ticket {incident.number} is a problem itself; link its incidents instead.",
                           code="problem_not_incident")
        if _add_link(session, problem, incident, INCIDENT, viewer.actor, now):
            _add_link(session, incident, problem, PROBLEM, viewer.actor, now)
            domain._record(session, problem, viewer, "incident", None, incident.number, now)
            domain._record(session, incident, viewer, "problem", None, problem.number, now)
            stage(session, Outbox, new_event("tickets_linked", {
                "ticket_number": problem.number, "other_number": incident.number, "actor": viewer.actor,
                "kind": INCIDENT}, correlation_id=viewer.correlation_id, subject=problem.number))
    session.flush()
    return problem_view(session, problem.number, viewer, rules, now)


def problem_view(session, number, viewer, rules, now=None):
    """The problem ticket and its incidents (those the viewer may see)."""
    _staff_only(viewer)
    problem = domain.find_ticket(session, number, viewer)
    visible = set(session.scalars(domain._visible(select(Ticket.id), viewer)))
    return {"problem": domain.ticket_view(problem, rules, now),
            "incidents": [{"number": t.number, "subject": t.subject, "status": t.status, "channel": t.channel}
                          for t in _incidents_of(session, problem) if t.id in visible]}


def _open(ticket, rules):
    return rules.workflow.category(ticket.status) not in ("resolved", "closed")


def send_update(session, number, command, viewer, rules, now=None):
    """One public update: a public reply with ``command.body`` on each open incident of the problem (each
    customer gets it on their channel), and an internal note on the problem saying who got it. Answers
    ``{"problem", "sent_to": [incident numbers]}``."""
    _staff_only(viewer)
    problem = domain.find_ticket(session, number, viewer, for_update=True)
    incidents = [t for t in _incidents_of(session, problem) if _open(t, rules)]
    if not incidents:
        raise Conflict(f"Problem {problem.number} has no open incidents to update.", code="no_open_incidents")
    reply = NewMessage(body=command.body, visibility="public")
    for incident in incidents:
        domain.add_message(session, incident.number, reply, viewer, rules, now=now)
    note = NewMessage(body=f"Update sent to {', '.join(t.number for t in incidents)}:\n\n{command.body}",
                      visibility="internal")
    domain.add_message(session, problem.number, note, viewer, rules, now=now)
    return {"problem": problem.number, "sent_to": [t.number for t in incidents]}


def after_status_change(session, ticket, old_status, viewer, rules, now):
    """Called by ``domain._change`` once a ticket's status changed: a problem that became solved solves its open
    incidents (when ``rules.problem_solves_incidents``). Answers the incidents solved."""
    workflow = rules.workflow
    solved = ("resolved", "closed")
    if (not rules.problem_solves_incidents or workflow.category(ticket.status) not in solved
            or workflow.category(old_status) in solved):
        return []
    done = []
    for incident in _incidents_of(session, ticket):
        if not _open(incident, rules):
            continue
        target = domain.customer_target(workflow, incident.status, True)
        if target is None:
            domain._record(session, ticket, viewer, "incident_not_solved", None, incident.number, now)
            continue
        domain._change(session, incident.number, TicketChanges(status=target), _as_system(viewer), rules, now)
        done.append(incident.number)
    return done


def _as_system(viewer):
    """The incidents are solved by the problem, on behalf of the person who solved it: the system may change
    every incident, also those outside that person's teams."""
    return viewer.model_copy(update={"role": "system"})
