"""Words the pages show for the platform's values (statuses, priorities, roles, lists, errors), in the
person's language, and how times are shown (the person's time zone)."""
from datetime import datetime

from flask_babel import format_datetime, get_locale, get_timezone, lazy_gettext as _l

STATUSES = {"new": _l("New"), "open": _l("Open"), "in_progress": _l("In progress"), "pending": _l("Pending"),
            "resolved": _l("Resolved"), "closed": _l("Closed")}
PRIORITIES = {"low": _l("Low"), "normal": _l("Normal"), "high": _l("High"), "urgent": _l("Urgent")}
ROLES = {"admin": _l("administrator"), "supervisor": _l("supervisor"), "agent": _l("agent"),
         "customer": _l("customer")}  # customer: a token's role (API tokens page)
VIEWS = {"mine": _l("My tickets"), "team": _l("My teams' queue"), "unassigned": _l("Unassigned"),
         "sla_at_risk": _l("SLA at risk"), "sla_breached": _l("SLA breached"), "all": _l("All tickets")}
CHANNELS = {"api": _l("API"), "email": _l("Email"), "web": _l("Web"), "chat": _l("Chat"), "phone": _l("Phone"),
            "social": _l("Social media")}
SORTS = {"updated": _l("Last changed"), "created": _l("Newest"), "priority": _l("Priority"),
         "sla_due": _l("SLA due soonest")}
PERIODS = {"last_7_days": _l("Last 7 days"), "last_30_days": _l("Last 30 days"), "last_week": _l("Last week"),
           "last_month": _l("Last month"), "this_month": _l("This month"), "this_week": _l("This week"),
           "fixed": _l("Fixed dates")}
MEASURES = {"volume": _l("Tickets created and solved"), "backlog": _l("Backlog"),
            "first_response": _l("First response time"),
            "resolution": _l("Resolution time"), "sla": _l("SLA compliance"), "escalations": _l("Escalations"),
            "one_touch": _l("One-touch resolution"), "agents": _l("Agent performance"), "csat": _l("CSAT"),
            "nps": _l("NPS"), "chats": _l("Chats"), "deflection": _l("Knowledge-base deflection")}
GROUPS = {"": _l("No grouping"), "team": _l("Team"), "agent": _l("Agent"), "channel": _l("Channel"),
          "priority": _l("Priority"), "category": _l("Category"), "language": _l("Language"),
          "policy": _l("SLA policy"), "day": _l("Day"), "week": _l("Week"), "month": _l("Month")}
SURGES = {"category": _l("Category"), "team": _l("Team"), "channel": _l("Channel"), "wording": _l("Wording")}
ERROR_TITLES = {400: _l("This request is not right"), 403: _l("Not allowed"), 404: _l("Not found"),
                409: _l("This change is not possible now"), 422: _l("This request is not right"),
                429: _l("Too many requests"), 503: _l("The helpdesk is busy")}
ERROR_TEXTS = {
    "csrf_failed": _l("This form has expired or did not come from this site; nothing was changed. "
                      "Reload the page and try again."),
    "ticket_not_found": _l("There is no such ticket, or it is not yours to see."),
    "not_found": _l("There is nothing at this address."),
    "invalid_transition": _l("The workflow does not allow this status change."),
    "rate_limited": _l("Several requests came from your address in a short time; nothing was sent. Please wait a "
                       "minute and try again."),
}


def status_label(name):
    # An organisation's own statuses (not in the built-in workflow) show as named in its workflow file.
    return STATUSES.get(name) or name.replace("_", " ")


def priority_label(name):
    return PRIORITIES.get(name, name)


def role_label(name):
    return ROLES.get(name, name)


def view_label(name):
    return VIEWS.get(name, name)


def period_label(name):
    return PERIODS.get(name, name)


def measure_label(name):
    return MEASURES.get(name, name)


def group_label(name):
    return GROUPS.get(name or "", name)


def surge_label(name):
    return SURGES.get(name, name)


def channel_label(name):
    return CHANNELS.get(name, name)


def sort_label(name):
    return SORTS.get(name, name)


def error_title(status):
    return ERROR_TITLES.get(status) or _l("Something went wrong")


def error_text(code, message):
    """Our own words for the errors we know; the service's message (English) for the others."""
    return ERROR_TEXTS.get(code) or message


def when(value):
    """An ISO time from a service, in the person's time zone and language."""
    if not value:
        return "—"
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return format_datetime(moment, "short")


def change_value(value):
    """A history value as a person reads it: times in their zone, records as "key: value", none as a dash."""
    if value is None or value == "":
        return "—"
    if isinstance(value, dict):
        return ", ".join(f"{key}: {change_value(item)}" for key, item in value.items() if item is not None) or "—"
    if isinstance(value, list):
        return ", ".join(change_value(item) for item in value) or "—"
    if isinstance(value, str) and len(value) >= 20 and value[4:5] == "-" and value[10:11] == "T":
        try:
            return when(value)
        except ValueError:
            return value
    return str(value)


def sla_text(sla):
    if not sla:
        return _l("No SLA")
    if sla.get("breached"):
        return _l("Breached")
    if sla.get("paused"):
        return _l("Paused (waiting on the customer)")
    remaining = [s for s in (sla.get("first_response_remaining_seconds"), sla.get("resolution_remaining_seconds"))
                 if s is not None]
    if not remaining:
        return _l("Met")
    hours = min(remaining) / 3600
    return _l("%(hours).1f business hours left", hours=hours)


def install(app):
    app.jinja_env.filters["when"] = when
    app.jinja_env.filters["change_value"] = change_value
    app.jinja_env.globals.update(status_label=status_label, priority_label=priority_label, role_label=role_label,
                                 view_label=view_label, channel_label=channel_label, sort_label=sort_label,
                                 period_label=period_label, surge_label=surge_label,
                                 measure_label=measure_label, group_label=group_label,
                                 error_title=error_title, error_text=error_text,
                                 sla_text=sla_text, current_locale=lambda: str(get_locale() or "en"),
                                 current_timezone=lambda: str(get_timezone() or "UTC"))
