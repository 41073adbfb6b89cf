"""Admin pages for routing and configuration: agents, teams, routing rules, custom fields.

Each change calls the function its REST route calls (``api.routing.add_agent``, ``change_agent``,
``add_team``, ``add_routing_rule``, ``change_rule``, ``remove_rule``; ``api.tickets.add_custom_field``), so the page and
the API validate and decide alike. A refused change shows the form again with what was typed.
"""
import pytz
from flask import abort, current_app, flash, g, redirect, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l

from helpdesk_common.contracts.routing import WEEKDAYS
from helpdesk_common.errors import HelpdeskError

from .. import accounts
from ..api.routing import (add_agent, add_routing_rule, add_team, change_agent, change_rule, change_team, read_agents,
                           read_rules, read_teams, remove_rule)
from ..api.tickets import add_custom_field, read_custom_fields
from . import forms
from ..api.accounts import send_invitation
from .admin import SECTIONS, admins_only, audited, bp, page

SECTIONS.extend(["agents", "teams", "rules", "fields"])

STRATEGIES = {"skills_and_load": _l("Skills, then load"), "least_loaded": _l("Least loaded"),
              "round_robin": _l("Round robin")}
FIELD_TYPES = {"string": _l("Text"), "number": _l("Number"), "integer": _l("Whole number"),
               "boolean": _l("Yes or no"), "enum": _l("One of a list"), "date": _l("Date")}
DAYS = {"mon": _l("Monday"), "tue": _l("Tuesday"), "wed": _l("Wednesday"), "thu": _l("Thursday"),
        "fri": _l("Friday"), "sat": _l("Saturday"), "sun": _l("Sunday")}
PRIORITIES = ("low", "normal", "high", "urgent")
PRESENCES = {"online": _l("Online"), "away": _l("Away"), "offline": _l("Offline")}
CONDITIONS = {"words": _l("Words in subject or description"), "channels": _l("Channels"),
              "categories": _l("Categories"), "languages": _l("Languages"), "priorities": _l("Priorities"),
              "requester_domains": _l("Requester's domains"), "mailboxes": _l("Mailboxes"),
              "custom_fields": _l("Custom fields")}
ACTIONS = {"team": _l("Team"), "tier": _l("Tier"), "priority": _l("Priority"),
           "required_skills": _l("Required skills")}
FORM_ERRORS = {"skill_level": _l("Write skills as name:level, the level 1 to 5 (for example vpn:4, billing:2)."),
               "number": _l("Write a whole number.")}


@bp.context_processor
def labels():
    return {"presence_label": lambda v: PRESENCES.get(v, v), "condition_label": lambda v: CONDITIONS.get(v, v),
            "action_label": lambda v: ACTIONS.get(v, v)}


def refused(error):
    """What to tell a person whose change was refused: our words for a form we could not read, the
    service's own (with each field's problem) for the rest."""
    if isinstance(error, forms.FormError):
        return _("Not saved (%(field)s): %(problem)s", field=error.field, problem=FORM_ERRORS[error.kind])
    details = "; ".join(f"{d.get('field')}: {d.get('message')}" for d in error.details if isinstance(d, dict))
    return _("Not saved: %(reason)s", reason=details or error.message)


def _team_names():
    return [team["name"] for team in read_teams()]


# --- agents ---------------------------------------------------------------------------------------

def _agents_page(form=None, status=200):
    return page("agents.html", section="agents", agents=read_agents(), teams=_team_names(), form=form or {},
                days=DAYS, zones=pytz.common_timezones, presences=PRESENCES), status


@bp.get("/agents")
def agents():
    return _agents_page()


@bp.post("/agents")
@admins_only
def create_agent():
    """The routing agent, and with "invite" its account (role agent, same email) and the invitation mail:
    one person, one identity."""
    try:
        body = forms.agent(request.form, _team_names(), new=True)
        agent = add_agent(body)
    except (forms.FormError, HelpdeskError) as error:
        flash(refused(error), "error")
        return _agents_page(request.form, 422)
    audited("routing.create_agent", body)
    flash(_("Agent %(name)s is created.", name=agent["name"]), "success")
    if request.form.get("invite") == "on":
        _invite_agent(agent)
    return redirect(url_for(".agents"))


def _invite_agent(agent):
    sessions = current_app.extensions["helpdesk.db"]
    try:
        # Linked at once: the agent exists, no need to wait for the first sign-in.
        account = accounts.invite_account(sessions, agent["email"], "agent", name=agent["name"],
                                          agent_id=agent["id"])
    except ValueError:
        flash(_("There is already an account for %(email)s.", email=agent["email"]), "error")
        return
    audited("accounts.create_invitation", {"email": account.email, "role": "agent", "name": agent["name"],
                                           "agent_id": agent["id"]})
    try:
        send_invitation(account)
    except HelpdeskError:
        flash(_("The account for %(email)s is made, but the invitation could not be sent: send it again in a "
                "minute.", email=account.email), "error")
        return
    flash(_("%(email)s is invited: the mail with the link is on its way.", email=account.email), "success")


def _agent(agent_id):
    agent = next((a for a in read_agents() if a["id"] == agent_id), None)
    if agent is None:
        abort(404)
    return agent


def _agent_form(agent):
    """An agent as the form shows it."""
    hours = agent.get("working_hours") or {}
    form = {"name": agent["name"], "email": agent["email"], "languages": ", ".join(agent["languages"]),
            "skills": ", ".join(f"{name}:{level}" for name, level in agent["skills"].items()),
            "teams": agent["teams"], "tier": agent["tier"], "capacity": agent["capacity"],
            "hours_timezone": hours.get("timezone", "")}
    form.update({f"hours_{day}": ", ".join(hours.get("weekly", {}).get(day, [])) for day in WEEKDAYS})
    return form


@bp.get("/agents/<int:agent_id>")
def agent(agent_id):
    agent = _agent(agent_id)
    return page("agent.html", section="agents", agent=agent, form=_agent_form(agent), teams=_team_names(),
                days=DAYS, zones=pytz.common_timezones)


@bp.post("/agents/<int:agent_id>")
@admins_only
def update_agent(agent_id):
    agent = _agent(agent_id)
    try:
        body = forms.agent(request.form, _team_names())
        change_agent(agent_id, body)
    except (forms.FormError, HelpdeskError) as error:
        flash(refused(error), "error")
        form = {**request.form.to_dict(), "teams": request.form.getlist("teams")}
        return page("agent.html", section="agents", agent=agent, form=form, teams=_team_names(), days=DAYS,
                    zones=pytz.common_timezones), 422
    audited("routing.update_agent", body, agent_id=agent_id)
    flash(_("Agent %(name)s is saved.", name=request.form.get("name") or agent["name"]), "success")
    return redirect(url_for(".agents"))


# --- teams ----------------------------------------------------------------------------------------

def _teams_page(form=None, status=200):
    return page("teams.html", section="teams", teams=read_teams(), strategies=STRATEGIES, form=form or {}), status


@bp.get("/teams")
def teams():
    return _teams_page()


@bp.post("/teams")
@admins_only
def create_team():
    try:
        body = forms.team(request.form)
        team = add_team(body)
    except (forms.FormError, HelpdeskError) as error:
        flash(refused(error), "error")
        return _teams_page(request.form, 422)
    audited("routing.create_team", body)
    flash(_("Team %(name)s is created.", name=team["name"]), "success")
    return redirect(url_for(".teams"))


def _team(name):
    team = next((t for t in read_teams() if t["name"] == name), None)
    if team is None:
        abort(404)
    return team


def _team_page(team, form, status=200):
    return page("team.html", section="teams", team=team, form=form, strategies=STRATEGIES,
                teams=_team_names()), status


@bp.get("/teams/<name>")
def team(name):
    team = _team(name)
    return _team_page(team, {key: team.get(key) for key in ("tier", "strategy", "escalates_to", "description")})


@bp.post("/teams/<name>")
@admins_only
def update_team(name):
    """The team's tier, how it gives out tickets, where it escalates, its description (``PATCH /teams/{name}``)."""
    team = _team(name)
    try:
        body = forms.team_changes(request.form)
        change_team(name, body)
    except (forms.FormError, HelpdeskError) as error:
        flash(refused(error), "error")
        return _team_page(team, request.form.to_dict(), 422)
    audited("routing.update_team", body, name=name)
    flash(_("Team %(name)s is saved.", name=name), "success")
    return redirect(url_for(".teams"))


# --- routing rules --------------------------------------------------------------------------------

def _rules_page(form=None, status=200):
    return page("rules.html", section="rules", rules=read_rules(), teams=_team_names(), priorities=PRIORITIES,
                form=form or {}), status


@bp.get("/rules")
def rules():
    return _rules_page()


@bp.post("/rules")
@admins_only
def create_rule():
    try:
        body = forms.rule(request.form)
        rule = add_routing_rule(body)
    except (forms.FormError, HelpdeskError) as error:
        flash(refused(error), "error")
        return _rules_page(request.form, 422)
    audited("routing.add_rule", body)
    flash(_("Rule %(name)s is added.", name=rule["name"]), "success")
    return redirect(url_for(".rules"))


def _rule(rule_id):
    rule = next((r for r in read_rules() if r["id"] == rule_id), None)
    if rule is None:
        abort(404)
    return rule


def _rule_form(rule):
    """A rule as the form shows it (lists with commas, skills as name:level)."""
    form = {"name": rule["name"], "position": rule["position"], "enabled": "on" if rule["enabled"] else "off"}
    form.update({f"if_{name}": ", ".join(map(str, rule["conditions"].get(name, []))) for name in forms.RULE_LISTS})
    actions = rule["actions"]
    form.update({"then_team": actions.get("team") or "", "then_tier": actions.get("tier") or "",
                 "then_priority": actions.get("priority") or "",
                 "then_skills": ", ".join(f"{n}:{level}" for n, level in actions.get("required_skills", {}).items())})
    return form


def _kept_conditions(rule):
    """The rule's conditions the form does not show (mailboxes, custom fields): kept as they are."""
    return {name: value for name, value in rule["conditions"].items() if name not in forms.RULE_LISTS and value}


def _rule_page(rule, form, status=200):
    return page("rule.html", section="rules", rule=rule, form=form, teams=_team_names(), priorities=PRIORITIES,
                kept=[str(CONDITIONS.get(name, name)) for name in _kept_conditions(rule)]), status


@bp.get("/rules/<int:rule_id>")
def rule(rule_id):
    rule = _rule(rule_id)
    return _rule_page(rule, _rule_form(rule))


@bp.post("/rules/<int:rule_id>")
@admins_only
def update_rule(rule_id):
    """The rule's name, order, conditions, actions and whether it is on (``PATCH /routing/rules/{id}``: the
    form's conditions and actions replace the rule's, those the form does not show kept)."""
    rule = _rule(rule_id)
    try:
        body = forms.rule(request.form)
        body["conditions"] = {**_kept_conditions(rule), **body["conditions"]}
        change_rule(rule_id, body)
    except (forms.FormError, HelpdeskError) as error:
        flash(refused(error), "error")
        return _rule_page(rule, request.form.to_dict(), 422)
    audited("routing.update_rule", body, rule_id=rule_id)
    flash(_("Rule %(name)s is saved.", name=body["name"] or rule["name"]), "success")
    return redirect(url_for(".rules", _anchor=f"rule-{rule_id}"))


@bp.post("/rules/<int:rule_id>/move")
@admins_only
def move_rule(rule_id):
    """One place up or down (``PATCH /routing/rules/{id}`` with the new position); back to the list at the
    rule (its row is the fragment's target, so keyboard focus continues from there)."""
    rule = _rule(rule_id)
    step = {"up": -1, "down": 1}.get(request.form.get("direction"))
    if step is None:
        abort(400)
    body = {"position": max(1, rule["position"] + step)}
    try:
        moved = change_rule(rule_id, body)
    except HelpdeskError as error:
        flash(refused(error), "error")
        return redirect(url_for(".rules"))
    audited("routing.update_rule", body, rule_id=rule_id)
    flash(_("Rule %(name)s is now number %(position)s.", name=rule["name"], position=moved["position"]), "success")
    return redirect(url_for(".rules", _anchor=f"rule-{rule_id}"))


@bp.post("/rules/<int:rule_id>/delete")
@admins_only
def delete_rule(rule_id):
    remove_rule(rule_id)
    audited("routing.delete_rule", rule_id=rule_id)
    flash(_("The rule is deleted."), "success")
    return redirect(url_for(".rules"))


# --- custom fields --------------------------------------------------------------------------------

def _fields_page(form=None, status=200):
    return page("fields.html", section="fields", fields=read_custom_fields(), types=FIELD_TYPES,
                form=form or {}), status


@bp.get("/fields")
def fields():
    return _fields_page()


@bp.post("/fields")
@admins_only
def create_field():
    try:
        body = forms.custom_field(request.form)
        field = add_custom_field(body)
    except (forms.FormError, HelpdeskError) as error:
        flash(refused(error), "error")
        return _fields_page(request.form, 422)
    audited("tickets.define_custom_field", body)
    flash(_("Field %(label)s is defined.", label=field["label"]), "success")
    return redirect(url_for(".fields"))
