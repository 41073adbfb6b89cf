"""Customer organisations, as plain functions of a SQLAlchemy session. No nameko in here.

The tickets service owns them because it owns the contacts that belong to them: one owner for "who is
in which organisation", and the ticket queries that a shared organisation widens run here, in one
database. Everyone else learns of them from ``organisation_created``/``organisation_updated`` and the
``organisation_id`` of ``contact_*`` events.

Membership: a contact belongs to the organisation of its primary address's domain (``domain``), unless an
admin put it in one or in none (``admin``), which no domain change overrides. A domain is one
organisation's at most (409 ``domain_taken``). Domain moves are announced in the organisation's event
(``members``: who joined and who left), an admin's choice in the contact's ``contact_updated``.

Sharing: a customer of a ``shared`` organisation sees (reads) every ticket whose requester's contact is in
it; writing (a reply, "solved", "reopen") stays the requester's own (``domain.find_ticket(write=True)``).
"""
from sqlalchemy import func, or_, select, update

from helpdesk_common.errors import Conflict, NotFound, ValidationFailed
from helpdesk_common.events import new_event
from helpdesk_common.outbox import stage

from .models import Contact, ContactIdentifier, Organisation, OrganisationDomain, Outbox

BY_DOMAIN, BY_ADMIN = "domain", "admin"


def domain_of(email):
    return email.rsplit("@", 1)[-1].lower() if email and "@" in email else None


def view(session, organisation):
    members = session.scalar(select(func.count()).select_from(Contact)
                             .where(Contact.organisation_id == organisation.id))
    return {"id": organisation.id, "name": organisation.name, "shared": bool(organisation.shared),
            "domains": [d.domain for d in organisation.domains], "members": members,
            "created_at": organisation.created_at.isoformat()}


def ref(organisation):
    """What a ticket shows of its requester's organisation."""
    if organisation is None:
        return None
    return {"id": organisation.id, "name": organisation.name, "shared": bool(organisation.shared)}


def get(session, organisation_id, for_update=False):
    query = select(Organisation).where(Organisation.id == organisation_id)
    if for_update:
        query = query.with_for_update(of=Organisation)
    organisation = session.scalar(query)
    if organisation is None:
        raise NotFound(f"There is no organisation {organisation_id}.", code="organisation_not_found")
    return organisation


def _check_domains_free(session, domains, organisation_id=None):
    taken = session.execute(select(OrganisationDomain.domain, OrganisationDomain.organisation_id)
                            .where(OrganisationDomain.domain.in_(domains))).all()
    for domain, owner in taken:
        if owner != organisation_id:
            raise Conflict(f"The domain {domain} belongs to organisation {owner} already; take it out there first.",
                           code="domain_taken")


def _by_domain(domains):
    """Contacts whose primary address is at one of ``domains`` and whose organisation no admin chose."""
    return select(Contact.id).where(or_(*[Contact.email.like(f"%@{domain}") for domain in domains]),
                                    or_(Contact.organisation_set_by.is_(None), Contact.organisation_set_by == BY_DOMAIN))


def _move(session, contact_ids, organisation_id, set_by):
    if contact_ids:
        session.execute(update(Contact).where(Contact.id.in_(contact_ids))
                        .values(organisation_id=organisation_id, organisation_set_by=set_by)
                        .execution_options(synchronize_session=False))
    session.expire_all()


def create(session, command, now):
    domains = list(dict.fromkeys(command.domains))
    _check_domains_free(session, domains)
    organisation = Organisation(name=command.name, shared=command.shared, created_at=now,
                                domains=[OrganisationDomain(domain=d) for d in domains])
    session.add(organisation)
    session.flush()
    joined = sorted(session.scalars(_by_domain(domains))) if domains else []
    _move(session, joined, organisation.id, BY_DOMAIN)
    result = view(session, organisation)
    stage(session, Outbox, new_event("organisation_created", {"organisation": result, "joined": joined}))
    return result


def change(session, organisation_id, command):
    organisation = get(session, organisation_id, for_update=True)
    before = view(session, organisation)
    changes = []
    if command.name is not None and command.name != organisation.name:
        organisation.name = command.name
    if command.shared is not None and command.shared != organisation.shared:
        organisation.shared = command.shared
    if command.domains is not None:
        wanted = list(dict.fromkeys(command.domains))
        _check_domains_free(session, wanted, organisation.id)
        removed = [d for d in before["domains"] if d not in wanted]
        added = [d for d in wanted if d not in before["domains"]]
        left = sorted(session.scalars(_by_domain(removed).where(Contact.organisation_id == organisation.id))) \
            if removed else []
        organisation.domains = [d for d in organisation.domains if d.domain in wanted]
        session.flush()
        organisation.domains.extend(OrganisationDomain(domain=d) for d in added)
        session.flush()
        joined = sorted(session.scalars(_by_domain(added))) if added else []
        _move(session, left, None, BY_DOMAIN)
        _move(session, joined, organisation.id, BY_DOMAIN)
        if left or joined:
            changes.append({"field": "members", "old": left, "new": joined})
        organisation = get(session, organisation_id)
    after = view(session, organisation)
    changes = [{"field": name, "old": before[name], "new": after[name]}
               for name in ("name", "domains", "shared") if before[name] != after[name]] + changes
    if changes:
        stage(session, Outbox, new_event("organisation_updated", {"organisation": after, "changes": changes}))
    return after


def find(session, query):
    """Organisations by id, a page at a time; with ``domain``, the one that domain belongs to."""
    statement = select(Organisation).order_by(Organisation.id).limit(query.limit + 1)
    if query.domain:
        statement = statement.where(Organisation.id.in_(
            select(OrganisationDomain.organisation_id).where(OrganisationDomain.domain == query.domain)))
    if query.cursor:
        if not (query.cursor.isascii() and query.cursor.isdigit()):
            raise ValidationFailed("The cursor is not one this API gave out; start again without it.",
                                   details=[{"field": "cursor", "code": "invalid_format",
                                             "message": "use next_cursor from the previous page"}])
        statement = statement.where(Organisation.id > int(query.cursor))
    found = list(session.scalars(statement))
    page = found[:query.limit]
    return {"items": [view(session, o) for o in page],
            "next_cursor": str(page[-1].id) if len(found) > query.limit else None}


def join_new_contacts(session, contact_ids):
    """New contacts join the organisation of their primary address's domain (before they are announced)."""
    rows = session.execute(select(Contact.id, Contact.email).where(Contact.id.in_(contact_ids),
                                                                    Contact.organisation_set_by.is_(None))).all()
    by_domain = {}
    for contact_id, email in rows:
        if domain_of(email):
            by_domain.setdefault(domain_of(email), []).append(contact_id)
    if not by_domain:
        return
    owners = dict(session.execute(select(OrganisationDomain.domain, OrganisationDomain.organisation_id)
                                  .where(OrganisationDomain.domain.in_(list(by_domain)))).all())
    for domain, organisation_id in owners.items():
        _move(session, by_domain[domain], organisation_id, BY_DOMAIN)


def colleagues_of(email):
    """The contacts whose tickets the customer of ``email`` may read besides their own: the members of the
    shared organisation of the contact known by that address (none when it is not shared)."""
    own = select(ContactIdentifier.contact_id).where(ContactIdentifier.kind == "email", ContactIdentifier.value == email)
    shared = (select(Contact.organisation_id).join(Organisation, Organisation.id == Contact.organisation_id)
              .where(Contact.id.in_(own), Organisation.shared.is_(True)))
    return select(Contact.id).where(Contact.organisation_id.in_(shared))


def members_of(organisation_id):
    return select(Contact.id).where(Contact.organisation_id == organisation_id)
