"""Custom fields: admins define them, tickets carry values checked against the definitions."""
from datetime import date

from sqlalchemy import select

from helpdesk_common.errors import Conflict, ValidationFailed

from .models import CustomFieldDefinition


def _type_problem(definition, value):
    kind = definition.type
    if kind == "string" and isinstance(value, str) and len(value) <= 2000:
        return None
    if kind == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return None
    if kind == "integer" and isinstance(value, int) and not isinstance(value, bool):
        return None
    if kind == "boolean" and isinstance(value, bool):
        return None
    if kind == "enum":
        if value in definition.options:
            return None
        return f"must be one of: {', '.join(definition.options)}"
    if kind == "date" and isinstance(value, str):
        try:
            date.fromisoformat(value)
            return None
        except ValueError:
            return "must be a date written as YYYY-MM-DD"
    return f"must be a {kind}"


_DEFINITIONS = select(CustomFieldDefinition.__table__)


def load_definitions(session):
    """Every custom field definition, by name (load once per transaction, not once per ticket), as plain
    rows with the model's attributes: read for every batch of new tickets, where building the statement
    and ORM objects cost more than the read."""
    return {d.name: d for d in session.execute(_DEFINITIONS)}


def check_values(session, values, *, current=None, definitions=None):
    """Return the ticket's custom fields after applying ``values``, or raise listing every problem.

    ``current`` is None when a ticket is opened (required fields must be given); on an update it is
    the ticket's present values, and a ``None`` value removes a field. ``definitions`` saves the query
    when the caller has them already.
    """
    if definitions is None:
        definitions = load_definitions(session)
    result = dict(current or {})
    problems = []
    for name, value in values.items():
        definition = definitions.get(name)
        if definition is None:
            known = ", ".join(sorted(definitions)) or "none are defined yet"
            problems.append({"field": f"custom_fields.{name}", "code": "unknown_custom_field",
                             "message": f"no custom field {name!r} is defined (known: {known})"})
            continue
        if value is None and current is not None:
            result.pop(name, None)
            continue
        problem = _type_problem(definition, value)
        if problem:
            problems.append({"field": f"custom_fields.{name}", "code": "invalid_custom_field",
                             "message": problem})
        else:
            result[name] = value
    for definition in definitions.values():
        if definition.required and definition.name not in result:
            problems.append({"field": f"custom_fields.{definition.name}", "code": "missing",
                             "message": f"{definition.label!r} is required"})
    if problems:
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:3])
        raise ValidationFailed(f"Custom fields are not valid: {summary}", details=problems)
    return result


def define(session, command):
    """Add a custom field definition (names are unique and permanent)."""
    if session.get(CustomFieldDefinition, command.name) is not None:
        raise Conflict(f"A custom field named {command.name!r} exists already.", code="custom_field_exists")
    if command.type == "enum" and not command.options:
        raise ValidationFailed("An enum field needs its options.",
                               details=[{"field": "options", "code": "missing",
                                         "message": "give the allowed values"}])
    definition = CustomFieldDefinition(name=command.name, label=command.label, type=command.type,
                                       required=command.required, options=list(command.options))
    session.add(definition)
    session.flush()
    return view(definition)


def all_definitions(session):
    return [view(d) for d in session.scalars(select(CustomFieldDefinition).order_by(
        CustomFieldDefinition.name))]


def view(definition):
    return {"name": definition.name, "label": definition.label, "type": definition.type,
            "required": definition.required, "options": list(definition.options or [])}
