"""A synthetic helpdesk history as the platform's events, for the tests and ``bench/analytics.py``.

Tickets over several weeks on several teams, channels and priorities; agents' first replies; pauses on
pending; resolutions; reopens; escalations (tier moves); SLA breaches; chats (answered and unanswered); CSAT
and NPS answers (some replaced by a later answer); portal suggestions, some deflected. Every event is built
with ``new_event`` (so it matches the catalogue) and its ``time`` set to the moment it tells.

Deterministic for a seed. ``HOLIDAY`` is a day off in :data:`CALENDARS`.
"""
import random
from datetime import datetime, timedelta, timezone

from helpdesk_common.events import new_event

START = datetime(2026, 10, 5, tzinfo=timezone.utc)  # a Monday
HOLIDAY = "2026-10-14"
CALENDARS = {
    "calendar": {"timezone": "Europe/Amsterdam", "weekly": {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
                 "holidays": [HOLIDAY]},
    "calendars": {"round_the_clock": {"timezone": "UTC", "weekly": {d: ["00:00-24:00"] for d in (
        "mon", "tue", "wed", "thu", "fri", "sat", "sun")}}},
    "policies": [{"name": "urgent", "calendar": "round_the_clock"}],
}
STATUSES = {"new": "new", "open": "open", "in_progress": "open", "pending": "pending", "resolved": "resolved",
            "closed": "closed"}
TEAMS = ("support", "billing", "network")
CHANNELS = ("email", "web", "chat", "phone", "api")
PRIORITIES = ("low", "normal", "high", "urgent")
CATEGORIES = ("access", "invoice", "outage", None)
LANGUAGES = ("en", "nl", "sv")
AGENTS = {team: [f"agent-{10 * i + k}" for k in range(1, 4)] for i, team in enumerate(TEAMS, start=1)}


def iso(moment):
    return moment.isoformat()


def _event(kind, data, at, subject=None, source=None):
    envelope = new_event(kind, data, subject=subject)
    envelope["time"] = iso(at)
    if source:
        envelope["source"] = source
    return envelope


class _Ticket:
    def __init__(self, number, created, rng):
        self.view = {
            "number": number, "subject": "Printer on fire", "description": "It smokes.",
            "requester": {"email": f"c{number}@example.com"}, "channel": rng.choice(CHANNELS),
            "priority": rng.choice(PRIORITIES), "status": "new", "team": rng.choice(TEAMS), "tier": 1,
            "assignee": None, "language": rng.choice(LANGUAGES), "category": rng.choice(CATEGORIES), "tags": [],
            "custom_fields": {}, "version": 1, "created_at": iso(created), "updated_at": iso(created),
            "first_response_at": None, "resolved_at": None, "closed_at": None, "sla": None}
        self.view["sla"] = {"policy": self.view["priority"], "first_response_breached": False,
                            "resolution_breached": False, "paused": False, "breached": False}

    def change(self, at, **fields):
        self.view = {**self.view, **fields, "version": self.view["version"] + 1, "updated_at": iso(at)}
        return self.view


def generate(tickets=2000, weeks=4, seed=7):
    """The events of a history, in the order they happened."""
    rng = random.Random(seed)
    events, message_id = [], 0
    span = weeks * 7 * 86400
    for index in range(tickets):
        created = START + timedelta(seconds=rng.randrange(span))
        number = f"HD-{index + 1:06d}"
        t = _Ticket(number, created, rng)
        events.append(_event("ticket_created", {"ticket": t.view}, created, number, "tickets"))
        at = created + timedelta(seconds=rng.randrange(30, 600))
        agent = rng.choice(AGENTS[t.view["team"]])
        events.append(_event("ticket_assigned", {
            "ticket_number": number, "assignee": agent, "team": t.view["team"], "tier": 1,
            "agent": {"id": int(agent.split("-")[1]), "name": agent, "email": f"{agent}@example.com", "assignee": agent},
            "reason": "rule", "assigned_at": iso(at), "sequence": 1}, at, number, "routing"))
        events.append(_event("ticket_updated", {"ticket": t.change(at, assignee=agent),
                                                "changes": [{"field": "assignee", "old": None, "new": agent}]},
                             at, number, "tickets"))
        if rng.random() < 0.15:  # escalated to tier 2, one in five of them within the team only
            at += timedelta(seconds=rng.randrange(60, 3600))
            to_tier = 2 if rng.random() < 0.8 else 1
            events.append(_event("ticket_escalated", {
                "ticket_number": number, "from_team": t.view["team"], "to_team": t.view["team"], "from_tier": 1,
                "to_tier": to_tier, "trigger": "manual", "reason": "hard one", "actor": agent,
                "escalated_at": iso(at), "sequence": 2}, at, number, "routing"))
            events.append(_event("ticket_updated", {"ticket": t.change(at, tier=to_tier),
                                                    "changes": [{"field": "tier", "old": 1, "new": to_tier}]},
                                 at, number, "tickets"))
        if rng.random() < 0.08:  # never answered (yet): backlog
            continue
        at += timedelta(seconds=rng.randrange(600, 3 * 86400))
        message_id += 1
        events.append(_reply(t, at, message_id, agent, first=True))
        at += timedelta(seconds=1)
        events.append(_status(t, at, "open"))
        if rng.random() < 0.25:  # waits on the customer for a while
            at += timedelta(seconds=rng.randrange(600, 86400))
            events.append(_status(t, at, "pending"))
            at += timedelta(seconds=rng.randrange(3600, 4 * 86400))
            events.append(_status(t, at, "open"))
            message_id += 1
            events.append(_reply(t, at + timedelta(seconds=5), message_id, agent))
            at += timedelta(seconds=5)
        if rng.random() < 0.1:
            at += timedelta(seconds=1)
            events.append(_event("sla_breached", {
                "ticket_number": number, "metric": "resolution", "policy": t.view["priority"],
                "priority": t.view["priority"], "team": t.view["team"], "tier": t.view["tier"],
                "target_seconds": 3600, "elapsed_seconds": 3700.0, "remaining_seconds": -100.0, "at": iso(at)},
                at, number, "tickets"))
        if rng.random() < 0.12:  # still being worked on
            continue
        at += timedelta(seconds=rng.randrange(600, 5 * 86400))
        events.append(_status(t, at, "resolved", resolved_at=iso(at)))
        if rng.random() < 0.1:  # the customer was not happy: reopened, answered, resolved again
            at += timedelta(seconds=rng.randrange(600, 86400))
            events.append(_status(t, at, "open"))
            message_id += 1
            at += timedelta(seconds=rng.randrange(60, 86400))
            events.append(_reply(t, at, message_id, agent))
            at += timedelta(seconds=rng.randrange(60, 86400))
            events.append(_status(t, at, "resolved", resolved_at=iso(at)))
        if rng.random() < 0.3:
            events.extend(_csat(rng, t, agent, at, index))
        if t.view["channel"] == "chat" or rng.random() < 0.02:
            events.extend(_chat(rng, index, created, agent))
    for index in range(tickets // 10):
        at = START + timedelta(seconds=rng.randrange(span))
        answer = {"survey_id": f"nps-{index}", "answer_id": f"nps-{index}-a", "contact_id": index + 1,
                  "score": rng.randrange(11), "comment": None, "language": rng.choice(LANGUAGES), "submitted_at": iso(at)}
        events.append(_event("nps_submitted", answer, at, None, "surveys"))
    for index in range(tickets // 5):
        at = START + timedelta(seconds=rng.randrange(span))
        suggestion = f"sg-{index}"
        events.append(_event("suggestion_shown", {"suggestion_id": suggestion, "context": "portal", "language": "en",
                                                  "query_length": 12, "article_ids": [1, 2]}, at, None, "kb_search"))
        if rng.random() < 0.3:
            later = at + timedelta(seconds=rng.randrange(5, 600))
            events.append(_event("suggestion_deflected", {
                "suggestion_id": suggestion, "language": "en", "article_ids": [1, 2], "article_id": 1,
                "shown_at": iso(at), "deflected_at": iso(later)}, later, None, "kb_search"))
    events.sort(key=lambda e: e["time"])
    return events


def _reply(t, at, message_id, agent, first=False):
    fields = {"first_response_at": iso(at)} if first else {}
    view = t.change(at, **fields)
    message = {"id": message_id, "ticket_number": t.view["number"], "visibility": "public", "author": agent,
               "author_role": "agent", "body": "Try turning it off and on.", "created_at": iso(at)}
    return _event("message_added", {"ticket": view, "message": message}, at, t.view["number"], "tickets")


def _status(t, at, status, **fields):
    before = t.view["status"]
    view = t.change(at, status=status, **fields)
    return _event("status_changed", {"ticket": view, "from_status": before, "to_status": status}, at,
                  t.view["number"], "tickets")


def _csat(rng, t, agent, at, index):
    first = at + timedelta(seconds=rng.randrange(60, 86400))
    answer = {"survey_id": f"csat-{index}", "answer_id": f"csat-{index}-a", "ticket": t.view["number"],
              "rating": rng.randint(1, 5), "comment": rng.choice([None, "Quick!", "=HYPERLINK(\"x\")", "slow"]),
              "channel": t.view["channel"], "team": t.view["team"], "assignee": agent, "language": t.view["language"],
              "submitted_at": iso(first)}
    events = [_event("csat_submitted", answer, first, t.view["number"], "surveys")]
    if rng.random() < 0.2:  # changed their mind: the later answer replaces the first
        later = first + timedelta(seconds=rng.randrange(60, 3600))
        events.append(_event("csat_submitted", {**answer, "answer_id": f"csat-{index}-b", "replaces": answer["answer_id"],
                                                "rating": rng.randint(1, 5), "submitted_at": iso(later)},
                             later, t.view["number"], "surveys"))
    return events


def _chat(rng, index, started, agent):
    chat = {"id": f"chat-{index}", "state": "waiting", "customer": {"name": "C"}, "agent": None, "subject": "Help",
            "ticket_number": None, "outcome": None, "last_seq": 1, "started_at": iso(started)}
    entry = {"seq": 1, "kind": "message", "author": "customer", "author_role": "customer", "body": "hi",
             "at": iso(started)}
    events = [_event("chat_started", {"chat": chat, "entry": entry}, started, None, "intake")]
    if rng.random() < 0.8:
        answered = started + timedelta(seconds=rng.randrange(5, 900))
        chat = {**chat, "state": "active", "agent": agent, "answered_at": iso(answered), "last_seq": 2}
        events.append(_event("chat_answered", {"chat": chat, "entry": {**entry, "seq": 2, "kind": "joined",
                                                                       "at": iso(answered)}}, answered, None, "intake"))
        outcome, ended = "answered", answered + timedelta(seconds=rng.randrange(60, 1800))
    else:
        outcome, ended = "unanswered", started + timedelta(seconds=900)
    chat = {**chat, "state": "ended", "outcome": outcome, "ended_at": iso(ended), "last_seq": chat["last_seq"] + 1}
    events.append(_event("chat_ended", {"chat": chat, "entry": {**entry, "seq": chat["last_seq"], "kind": "ended",
                                                                "at": iso(ended)}}, ended, None, "intake"))
    return events


def export_of(events, page_size=100):
    """The tickets service's history export (``export_history`` pages) for the tickets of ``events``, as it
    would answer once they all happened: each ticket's latest view, its status changes, its messages."""
    items = {}
    for e in events:
        if e["type"] in ("ticket_created", "ticket_updated", "status_changed", "message_added"):
            view = e["data"]["ticket"]
            item = items.setdefault(view["number"], {"ticket": view, "status_changes": [], "messages": []})
            if view["version"] >= item["ticket"]["version"]:
                item["ticket"] = view
            if e["type"] == "status_changed":
                item["status_changes"].append({"at": view["updated_at"], "old": e["data"]["from_status"],
                                               "new": e["data"]["to_status"]})
            if e["type"] == "message_added":
                m = e["data"]["message"]
                item["messages"].append({"id": m["id"], "visibility": m["visibility"], "author_role": m["author_role"],
                                         "created_at": m["created_at"]})
    ordered = [items[n] for n in sorted(items)]
    for item in ordered:
        item["status_changes"].sort(key=lambda c: c["at"])
    pages = {}
    for index in range(0, len(ordered), page_size):
        cursor = None if index == 0 else str(index)
        following = str(index + page_size) if index + page_size < len(ordered) else None
        pages[cursor] = {"items": ordered[index:index + page_size], "next_cursor": following, "total": len(ordered)}
    return lambda cursor, limit: pages[cursor]
