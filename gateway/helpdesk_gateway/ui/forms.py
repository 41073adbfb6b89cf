"""Reading the admin pages' forms into the bodies the REST routes take (plain functions, no Flask).

A person types lists as "en, nl" and skills as "vpn:4, billing"; these become the JSON the contracts
expect, and the contracts (called by the same gateway functions as the REST routes) judge the rest.
"""
from helpdesk_common.contracts.routing import WEEKDAYS


class FormError(ValueError):
    """A field typed in a way we cannot read: ``field`` names it, ``kind`` says how (for the message)."""

    def __init__(self, field, kind):
        super().__init__(f"{field}: {kind}")
        self.field, self.kind = field, kind


def words(text):
    """"en, nl ,,sv" -> ["en", "nl", "sv"] (commas or new lines between)."""
    return [part.strip() for part in (text or "").replace("\n", ",").split(",") if part.strip()]


def skills(text, field="skills"):
    """"vpn:4, billing" -> {"vpn": 4, "billing": 1} (level 1 when none is given)."""
    found = {}
    for part in words(text):
        name, _, level = part.partition(":")
        try:
            found[name.strip().lower()] = int(level) if level.strip() else 1
        except ValueError:
            raise FormError(field, "skill_level") from None
    return found


def number(text, field, default=None):
    if not (text or "").strip():
        return default
    try:
        return int(text)
    except ValueError:
        raise FormError(field, "number") from None


def working_hours(form):
    """``hours_mon`` ... ``hours_sun`` ("09:00-12:00, 13:00-17:00"; empty: not worked) and
    ``hours_timezone``; None (always available) when no day has hours."""
    weekly = {day: words(form.get(f"hours_{day}", "")) for day in WEEKDAYS}
    weekly = {day: spans for day, spans in weekly.items() if spans}
    if not weekly:
        return None
    return {"timezone": form.get("hours_timezone") or "UTC", "weekly": weekly}


def agent(form, teams_known, new=False):
    """The body of an agent (``NewAgent``, or ``AgentChanges`` without ``new``) from the agent form;
    presence only for a new agent (afterwards it is the agent's own, set on its own route)."""
    body = {"name": form.get("name", "").strip(), "email": form.get("email", "").strip(),
            "languages": [language.lower() for language in words(form.get("languages"))],
            "skills": skills(form.get("skills")),
            "teams": [team for team in form.getlist("teams") if team in teams_known],
            "tier": number(form.get("tier"), "tier", 1), "capacity": number(form.get("capacity"), "capacity", 10),
            "working_hours": working_hours(form)}
    if new:
        body["presence"] = form.get("presence") or "offline"
    return body


def team(form):
    body = {"name": form.get("name", "").strip(), "tier": number(form.get("tier"), "tier", 1),
            "strategy": form.get("strategy") or "skills_and_load"}
    if form.get("escalates_to"):
        body["escalates_to"] = form["escalates_to"]
    if form.get("description", "").strip():
        body["description"] = form["description"].strip()
    return body


def team_changes(form):
    """The body of a change to a team (``TeamChanges``): what the edit form holds. An empty "escalates to"
    is left out (the route has no way to clear it yet)."""
    body = {"tier": number(form.get("tier"), "tier", 1), "strategy": form.get("strategy") or "skills_and_load",
            "description": form.get("description", "").strip() or None}
    if form.get("escalates_to"):
        body["escalates_to"] = form["escalates_to"]
    return {name: value for name, value in body.items() if value is not None}


RULE_LISTS = ("channels", "categories", "languages", "priorities", "requester_domains", "words")


def rule(form):
    """The body of a routing rule (``NewRule``) from the rule form."""
    conditions = {name: words(form.get(f"if_{name}")) for name in RULE_LISTS}
    conditions = {name: values for name, values in conditions.items() if values}
    actions = {"required_skills": skills(form.get("then_skills"), "then_skills")}
    if form.get("then_team"):
        actions["team"] = form["then_team"]
    if form.get("then_tier"):
        actions["tier"] = number(form["then_tier"], "then_tier")
    if form.get("then_priority"):
        actions["priority"] = form["then_priority"]
    body = {"name": form.get("name", "").strip(), "conditions": conditions, "actions": actions,
            "enabled": form.get("enabled", "on") == "on"}
    position = number(form.get("position"), "position")
    if position is not None:
        body["position"] = position
    return body


def custom_field(form):
    return {"name": form.get("name", "").strip(), "label": form.get("label", "").strip(),
            "type": form.get("type") or "string", "required": form.get("required") == "on",
            "options": words(form.get("options"))}
