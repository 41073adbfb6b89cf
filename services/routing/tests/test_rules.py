"""Pure rules: language detection, rule matching, agent selection (no database, no broker)."""
from datetime import datetime, timezone

import pytest

from helpdesk_common.business_hours import Calendar
from helpdesk_routing.language import detect_language
from helpdesk_routing.rules import Candidate, RuleSpec, decide, rule_matches, select_agent

NOON = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)  # a Monday


@pytest.mark.parametrize("text, language", [
    ("My VPN drops every five minutes since Monday, can you please help me with this?", "en"),
    ("Mijn VPN valt sinds maandag elke vijf minuten weg, kunnen jullie mij helpen?", "nl"),
    ("Min VPN kopplas ner var femte minut sedan i måndags, kan ni hjälpa mig med det?", "sv"),
    ("Het werkt niet", "nl"),
    ("Det fungerar inte", "sv"),
    ("It does not work", "en"),
    ("Skärmen är trasig", "sv"),
])
def test_detects_english_dutch_and_swedish(text, language):
    assert detect_language(text) == language


@pytest.mark.parametrize("text", ["", "VPN", "12345 !!!", "Printer HP-4000 error 0x80"])
def test_says_nothing_when_the_evidence_is_thin(text):
    assert detect_language(text) is None


def ticket(**fields):
    base = {"subject": "VPN drops", "description": "It drops all the time.", "channel": "email",
            "priority": "normal", "language": "en", "category": "network", "team": None,
            "requester": {"email": "eva@acme.se"}, "custom_fields": {"product": "vpn", "mailbox": "support@x.io"}}
    base.update(fields)
    return base


def test_each_condition_must_hold_and_any_value_of_a_list_may():
    t = ticket()
    assert rule_matches({}, t, "en")
    assert rule_matches({"channels": ["chat", "email"], "languages": ["en"], "priorities": ["normal"]}, t, "en")
    assert not rule_matches({"channels": ["chat"]}, t, "en")
    assert not rule_matches({"languages": ["sv"]}, t, "en")
    assert rule_matches({"categories": ["network"], "requester_domains": ["acme.se"]}, t, "en")
    assert not rule_matches({"requester_domains": ["acme.com"]}, t, "en")
    assert rule_matches({"mailboxes": ["support@x.io"]}, t, "en")
    assert rule_matches({"custom_fields": {"product": ["vpn", "wifi"]}}, t, "en")
    assert not rule_matches({"custom_fields": {"product": "wifi"}}, t, "en")
    assert not rule_matches({"custom_fields": {"missing": "x"}}, t, "en")


def test_words_match_whole_words_case_insensitively_in_subject_or_description():
    t = ticket(subject="Invoice question", description="Was I charged TWICE?")
    assert rule_matches({"words": ["twice"]}, t, "en")
    assert rule_matches({"words": ["refund", "invoice"]}, t, "en")
    assert not rule_matches({"words": ["charge"]}, t, "en")  # "charged" is another word
    assert rule_matches({"words": ["c++"]}, ticket(description="my C++ build fails"), "en")


def test_first_matching_rule_decides_and_language_is_detected():
    rules = [RuleSpec("billing", {"words": ["invoice"]}, {"team": "billing", "required_skills": {"billing": 2}}),
             RuleSpec("urgent-network", {"categories": ["network"], "priorities": ["urgent"]},
                      {"team": "network", "tier": 2}),
             RuleSpec("network", {"categories": ["network"]}, {"team": "network", "priority": "high"})]
    d = decide(rules, ticket(language=None, description="Mijn VPN valt steeds weg, het werkt niet"))
    assert (d.team, d.tier, d.priority, d.language, d.rule) == ("network", None, "high", "nl", "network")
    d = decide(rules, ticket(priority="urgent"))
    assert (d.team, d.tier, d.priority, d.rule) == ("network", 2, "urgent", "urgent-network")
    d = decide(rules, ticket(subject="Invoice"))
    assert (d.team, d.required_skills) == ("billing", {"billing": 2})
    d = decide(rules, ticket(category="other", team="desk"), default_team="general")
    assert (d.team, d.rule, d.priority) == ("desk", None, "normal")
    assert decide(rules, ticket(category="other"), default_team="general").team == "general"


def agents(*specs):
    defaults = {"tier": 1, "load": 0, "capacity": 5, "skills": {"vpn": 3}, "languages": ["en", "nl"]}
    return [Candidate(id=i + 1, **{**defaults, **spec}) for i, spec in enumerate(specs)]


def pick(candidates, **kwargs):
    kwargs.setdefault("tier", 1)
    chosen = select_agent(candidates, now=kwargs.pop("now", NOON), **kwargs)
    return chosen.id if chosen else None


def test_least_loaded_then_round_robin_among_equals():
    pool = agents({"load": 2}, {"load": 1, "last_assignment_id": 9}, {"load": 1, "last_assignment_id": 4})
    assert pick(pool) == 3  # load 1 twice: the one assigned longest ago
    pool[2].load = 3
    assert pick(pool) == 2


def test_only_online_under_capacity_of_the_tier_within_hours():
    office = Calendar.from_dict({"timezone": "Europe/Stockholm", "weekly": {"mon": ["08:00-12:00"]}})
    pool = agents({"presence": "away"}, {"load": 5}, {"tier": 2}, {"working_hours": office}, {"load": 4})
    assert pick(pool) == 5  # 13:00 in Stockholm: agent 4 has gone home
    assert pick(pool, now=datetime(2026, 11, 23, 8, tzinfo=timezone.utc)) == 4
    assert pick(pool, tier=2) == 3
    pool[4].load = 5
    assert pick(pool) is None


def test_skills_at_level_and_language_for_skills_and_load():
    pool = agents({"skills": {"vpn": 2}, "load": 0}, {"skills": {"vpn": 4, "wifi": 1}, "load": 3},
                  {"languages": ["sv"], "skills": {"vpn": 5}})
    assert pick(pool, required_skills={"vpn": 3}, language="en") == 2
    assert pick(pool, required_skills={"vpn": 3}, language="sv") == 3
    assert pick(pool, required_skills={"vpn": 3, "wifi": 2}) is None
    # load only: skills and language do not matter, the least loaded does
    assert pick(pool, required_skills={"vpn": 3}, language="sv", strategy="least_loaded") == 1


def test_round_robin_rotates_regardless_of_load():
    pool = agents({"load": 4, "last_assignment_id": 1}, {"load": 0, "last_assignment_id": 7},
                  {"load": 0, "last_assignment_id": 3})
    assert pick(pool, strategy="round_robin") == 1
    with pytest.raises(ValueError):
        pick(pool, strategy="random")
