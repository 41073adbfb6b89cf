"""Routing rules and agent selection as pure functions: no database, no nameko, no clock of their own.

``decide`` reads a ticket (the ``TicketView`` shape of the events) against the ordered rules and says
where it goes; ``select_agent`` picks who takes it among candidate agents. The database layer
(``domain``) feeds both and makes the choice stick under concurrency.
"""
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional

from helpdesk_common.business_hours import Calendar, is_open
from .language import detect_language

PRIORITY_RANK = {"low": 0, "normal": 1, "high": 2, "urgent": 3}
STRATEGIES = ("round_robin", "least_loaded", "skills_and_load")


@dataclass(frozen=True)
class RuleSpec:
    name: str
    conditions: dict
    actions: dict


@dataclass(frozen=True)
class Decision:
    """Where a ticket goes. ``tier`` None: the team's own tier."""

    team: Optional[str]
    tier: Optional[int]
    required_skills: dict
    priority: str
    language: Optional[str]
    rule: Optional[str]


@lru_cache(maxsize=4096)
def _words_pattern(words):
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w.lower()) for w in words) + r")(?!\w)")


def _mailbox(ticket):
    return ticket.get("mailbox") or (ticket.get("custom_fields") or {}).get("mailbox")


def _domain(ticket):
    email = (ticket.get("requester") or {}).get("email") or ""
    return email.rpartition("@")[2].lower()


# What each list condition compares, read from the ticket (and its language, given or detected). Built
# once, not per call: rule matching runs for every rule on every new ticket.
_ATTRIBUTES = {
    "channels": lambda ticket, language: ticket.get("channel"),
    "categories": lambda ticket, language: ticket.get("category"),
    "languages": lambda ticket, language: language,
    "priorities": lambda ticket, language: ticket.get("priority"),
    "mailboxes": lambda ticket, language: _mailbox(ticket),
    "requester_domains": lambda ticket, language: _domain(ticket),
}


def rule_matches(conditions, ticket, language):
    """Whether every condition given holds for ``ticket`` (``language``: given or detected)."""
    for key, wanted in conditions.items():
        attribute = _ATTRIBUTES.get(key)
        if attribute is not None and wanted and attribute(ticket, language) not in wanted:
            return False
    wanted_fields = conditions.get("custom_fields")
    if wanted_fields:
        fields = ticket.get("custom_fields") or {}
        for name, wanted in wanted_fields.items():
            value = fields.get(name)
            if isinstance(wanted, list):
                if value not in wanted:
                    return False
            elif value != wanted:
                return False
    words = conditions.get("words")
    if words:
        text = f"{ticket.get('subject') or ''}\n{ticket.get('description') or ''}".lower()
        if not _words_pattern(tuple(words)).search(text):
            return False
    return True


def decide(rules, ticket, default_team=None):
    """Apply the first matching rule of ``rules`` (ordered ``RuleSpec``) to ``ticket``.

    Without a matching rule, the ticket's own team (if it names one) or ``default_team``; the
    priority stays the ticket's unless the rule changes it. The language is the ticket's, or detected
    from its subject and description.
    """
    language = ticket.get("language") or detect_language(ticket.get("subject"), ticket.get("description"))
    priority = ticket.get("priority") or "normal"
    for rule in rules:
        if rule_matches(rule.conditions, ticket, language):
            actions = rule.actions
            return Decision(team=actions.get("team") or ticket.get("team") or default_team,
                            tier=actions.get("tier"), required_skills=dict(actions.get("required_skills") or {}),
                            priority=actions.get("priority") or priority, language=language, rule=rule.name)
    return Decision(team=ticket.get("team") or default_team, tier=None, required_skills={}, priority=priority,
                    language=language, rule=None)


# --- Agent selection ------------------------------------------------------------------------------

@dataclass
class Candidate:
    """An agent as selection sees it."""

    id: int
    tier: int
    load: int
    capacity: int
    presence: str = "online"
    skills: dict = field(default_factory=dict)
    languages: list = field(default_factory=list)
    last_assignment_id: int = 0
    working_hours: Optional[Calendar] = None


def has_skills(agent, required_skills):
    skills = agent.skills or {}
    return all(skills.get(name, 0) >= level for name, level in required_skills.items())


def speaks(agent, language):
    """An unknown language, or an agent who declared no languages, does not restrict."""
    return language is None or not agent.languages or language in agent.languages


def eligible(agent, *, tier, required_skills, language, strategy, now):
    """Online, of the tier, within working hours, under capacity, and (skills_and_load) skilled enough
    and speaking the ticket's language."""
    if agent.presence != "online" or agent.tier != tier or agent.load >= agent.capacity:
        return False
    if strategy == "skills_and_load" and not (has_skills(agent, required_skills) and speaks(agent, language)):
        return False
    return agent.working_hours is None or is_open(agent.working_hours, now)


def rank_key(agent, strategy):
    """Sort key, best first: least loaded, then round-robin (longest since the last assignment).

    ``round_robin`` ignores load (beyond capacity): strict rotation.
    """
    if strategy == "round_robin":
        return (agent.last_assignment_id, agent.id)
    return (agent.load, agent.last_assignment_id, agent.id)


def ranked_agents(candidates, *, tier, required_skills, language, strategy, now):
    """Eligible candidates, best first."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}")
    chosen = [a for a in candidates if eligible(a, tier=tier, required_skills=required_skills, language=language,
                                                  strategy=strategy, now=now)]
    chosen.sort(key=lambda agent: rank_key(agent, strategy))
    return chosen


def select_agent(candidates, *, tier, required_skills=None, language=None, strategy="skills_and_load", now):
    """The agent who should take a ticket, or None when nobody eligible is free."""
    ranked = ranked_agents(candidates, tier=tier, required_skills=required_skills or {}, language=language,
                           strategy=strategy, now=now)
    return ranked[0] if ranked else None
