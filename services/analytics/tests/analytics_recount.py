"""A brute-force recount of every report straight from the raw events, written apart from the service's code
(only the shared business-hours function is common: it *is* the definition of business time).

Slow on purpose: every report walks every event again, in the most obvious way.
"""
import math
import statistics
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from helpdesk_common.business_hours import Calendar, business_seconds

DIMS = ("team", "agent", "channel", "priority", "category", "language", "policy")


def _t(value):
    return datetime.fromisoformat(value) if value else None


def _median(values):
    return statistics.median(values) if values else None


def _p90(values):
    values = sorted(values)
    return values[math.ceil(0.9 * len(values)) - 1] if values else None


def _mean(values):
    return math.fsum(values) / len(values) if values else None


class Recount:
    def __init__(self, events, statuses, calendars):
        self.statuses = statuses
        self.default = Calendar.from_dict(calendars["calendar"])
        named = {k: Calendar.from_dict(v) for k, v in calendars["calendars"].items()}
        self.by_policy = {p["name"]: named[p["calendar"]] for p in calendars["policies"]}
        seen, unique = set(), []
        for event in events:  # a repeated event id is one event
            if event["id"] not in seen:
                seen.add(event["id"])
                unique.append(event)
        self.events = unique
        self.of = {}  # ticket number -> its events (a plain index, so each ticket's walk is short)
        for e in unique:
            d = e.get("data") or {}
            number = (d.get("ticket") or {}).get("number") if isinstance(d.get("ticket"), dict) else None
            number = number or d.get("ticket_number")
            if number:
                self.of.setdefault(number, []).append(e)
        self.tickets = {}
        for e in unique:
            ticket = (e.get("data") or {}).get("ticket")
            if e["type"] in ("ticket_created", "ticket_updated", "status_changed", "message_added"):
                best = self.tickets.get(ticket["number"])
                if best is None or ticket["version"] >= best["version"]:
                    self.tickets[ticket["number"]] = ticket

    def category(self, status):
        return self.statuses.get(status, "open")

    def dims(self, number):
        t = self.tickets[number]
        return {"team": t["team"], "agent": t["assignee"], "channel": t["channel"], "priority": t["priority"],
                "category": t["category"], "language": t["language"], "policy": (t.get("sla") or {}).get("policy")}

    def statuses_of(self, number):
        """(moment, category) of each status the ticket entered, in order, each moment once."""
        found = {}
        for e in self.of.get(number, ()):
            d = e["data"]
            if e["type"] == "ticket_created" and d["ticket"]["number"] == number:
                found[_t(d["ticket"]["created_at"])] = (d["ticket"]["version"], self.category(d["ticket"]["status"]))
            if e["type"] == "status_changed" and d["ticket"]["number"] == number:
                found[_t(d["ticket"]["updated_at"])] = (d["ticket"]["version"], self.category(d["to_status"]))
        return sorted((at, v, c) for at, (v, c) in found.items())

    def solved_at(self, number):
        t = self.tickets[number]
        if self.category(t["status"]) not in ("resolved", "closed"):
            return None
        return _t(t["resolved_at"] or t["closed_at"])

    def pauses(self, number):
        moves = self.statuses_of(number)
        return [(a[0], b[0]) for a, b in zip(moves, moves[1:]) if a[2] == "pending"]

    def business(self, number, start, end):
        calendar = self.by_policy.get(self.dims(number)["policy"], self.default)
        return business_seconds(calendar, start, end, self.pauses(number))

    def reopens(self, number):
        times = {e["data"]["ticket"]["updated_at"] for e in self.of.get(number, ()) if e["type"] == "status_changed"
                 and e["data"]["ticket"]["number"] == number
                 and self.category(e["data"]["from_status"]) in ("resolved", "closed")
                 and self.category(e["data"]["to_status"]) not in ("resolved", "closed")}
        return sorted(_t(x) for x in times)

    def replies(self, number):
        return {e["data"]["message"]["id"]: e for e in self.of.get(number, ()) if e["type"] == "message_added"
                and e["data"]["ticket"]["number"] == number and e["data"]["message"]["visibility"] == "public"
                and e["data"]["message"]["author_role"] in ("agent", "admin")}

    def escalations(self, number):
        return {e["data"].get("sequence"): e["data"] for e in self.of.get(number, ()) if e["type"] == "ticket_escalated"
                and e["data"]["ticket_number"] == number}

    def breached(self, number):
        sla = self.tickets[number].get("sla") or {}
        return bool(sla.get("first_response_breached") or sla.get("resolution_breached") or any(
            e["type"] == "sla_breached" and e["data"]["ticket_number"] == number for e in self.of.get(number, ())))

    def latest_answers(self, kind):
        latest = {}
        for e in self.events:
            if e["type"] == f"{kind}_submitted":
                d = e["data"]
                key = (_t(d["submitted_at"]), d["answer_id"])
                if d["survey_id"] not in latest or key > latest[d["survey_id"]][0]:
                    latest[d["survey_id"]] = (key, d)
        return [d for _, d in latest.values()]

    # --- the reports ------------------------------------------------------------------------------

    def report(self, measure, start, end, group_by=(), filters=None, tz="UTC", now=None):
        filters = filters or {}
        zone = ZoneInfo(tz)

        def label(at, g):
            day = at.astimezone(zone).date()
            if g == "week":
                day -= timedelta(days=day.weekday())
            if g == "month":
                day = day.replace(day=1)
            return day.isoformat()

        def key(at, dims):
            return tuple(label(at, g) if g in ("day", "week", "month") else dims.get(g) for g in group_by)

        groups = {}

        def add(at, dims, item):
            if at is not None and start <= at < end and all(dims.get(k) == v for k, v in filters.items()):
                groups.setdefault(key(at, dims), []).append(item)

        numbers = sorted(self.tickets)
        if measure == "volume":
            for n in numbers:
                add(_t(self.tickets[n]["created_at"]), self.dims(n), "created")
                add(self.solved_at(n), self.dims(n), "solved")
                for at in self.reopens(n):
                    add(at, self.dims(n), "reopened")
            out = {k: {x: v.count(x) for x in ("created", "solved", "reopened")} for k, v in groups.items()}
        elif measure in ("first_response", "resolution"):
            for n in numbers:
                created = _t(self.tickets[n]["created_at"])
                end_at = _t(self.tickets[n]["first_response_at"]) if measure == "first_response" else self.solved_at(n)
                if end_at:
                    add(end_at, self.dims(n), ((end_at - created).total_seconds(), self.business(n, created, end_at)))
            out = {}
            for k, v in groups.items():
                cal, bus = [c for c, _ in v], [b for _, b in v]
                out[k] = {"count": len(v), "calendar_median": _median(cal), "calendar_p90": _p90(cal),
                          "calendar_mean": _mean(cal), "business_median": _median(bus), "business_p90": _p90(bus),
                          "business_mean": _mean(bus)}
        elif measure == "sla":
            group_by = group_by or ("policy",)
            for n in numbers:
                if self.dims(n)["policy"]:
                    add(self.solved_at(n), self.dims(n), self.breached(n))
            out = {k: {"count": len(v), "breached": sum(v), "compliance": v.count(False) / len(v)} for k, v in groups.items()}
        elif measure == "escalations":
            for n in numbers:
                add(_t(self.tickets[n]["created_at"]), self.dims(n), self.escalations(n))
            out = {k: {"count": len(v), "escalated": sum(1 for x in v if x), "escalation_rate": sum(1 for x in v if x) / len(v),
                       "escalations": sum(len(x) for x in v),
                       "tier_moves": sum(1 for x in v for d in x.values() if d["from_tier"] != d["to_tier"])}
                   for k, v in groups.items()}
        elif measure == "one_touch":
            for n in numbers:
                add(self.solved_at(n), self.dims(n), len(self.replies(n)) == 1 and not self.reopens(n))
            out = {k: {"count": len(v), "one_touch": sum(v), "one_touch_rate": sum(v) / len(v)} for k, v in groups.items()}
        elif measure == "csat":
            for d in self.latest_answers("csat"):
                add(_t(d["submitted_at"]), {"team": d["team"], "agent": d["assignee"], "channel": d["channel"],
                                            "language": d["language"]}, d)
            out = {k: {"count": len(v), "satisfied": sum(1 for d in v if d["rating"] >= 4),
                       "csat": sum(1 for d in v if d["rating"] >= 4) / len(v),
                       "mean": _mean([d["rating"] for d in v])} for k, v in groups.items()}
        elif measure == "nps":
            for d in self.latest_answers("nps"):
                add(_t(d["submitted_at"]), {"language": d["language"]}, d["score"])
            out = {k: {"count": len(v), "promoters": sum(1 for s in v if s >= 9),
                       "detractors": sum(1 for s in v if s <= 6),
                       "nps": 100 * (sum(1 for s in v if s >= 9) - sum(1 for s in v if s <= 6)) / len(v)}
                   for k, v in groups.items()}
        elif measure == "chats":
            chats = {}
            for e in self.events:
                if e["type"].startswith("chat_"):
                    c = e["data"]["chat"]
                    merged = chats.setdefault(c["id"], {})
                    for f in ("started_at", "answered_at", "outcome", "agent"):
                        merged[f] = merged.get(f) or c.get(f)
            for c in chats.values():
                add(_t(c["started_at"]), {"agent": c["agent"]}, c)
            out = {}
            for k, v in groups.items():
                waits = [(_t(c["answered_at"]) - _t(c["started_at"])).total_seconds() for c in v if c["answered_at"]]
                out[k] = {"count": len(v), "unanswered": sum(1 for c in v if c["outcome"] == "unanswered"),
                          "wait_median": _median(waits), "wait_p90": _p90(waits), "wait_mean": _mean(waits)}
        elif measure == "deflection":
            for e in self.events:
                if e["type"] == "suggestion_deflected":
                    add(_t(e["data"]["deflected_at"]), {}, "deflected")
            for n in numbers:
                if self.tickets[n]["channel"] == "web":
                    add(_t(self.tickets[n]["created_at"]), self.dims(n), "ticket")
            out = {k: {"deflected": v.count("deflected"), "portal_tickets": v.count("ticket")} for k, v in groups.items()}
        elif measure == "backlog":
            out = {}
            moves = {n: self.statuses_of(n) for n in numbers}
            day = start.astimezone(zone).date()
            while True:
                ends = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(days=1)
                ends = datetime(ends.year, ends.month, ends.day, tzinfo=zone)
                stop = min(ends, end, now)
                if datetime(day.year, day.month, day.day, tzinfo=zone) >= min(end, now):
                    break
                for n in numbers:
                    if _t(self.tickets[n]["created_at"]) >= stop:
                        continue
                    dims = self.dims(n)
                    if not all(dims.get(k) == v for k, v in filters.items()):
                        continue
                    before = [c for at, _, c in moves[n] if at < stop]
                    if before:
                        k = (day.isoformat(),) + tuple(dims.get(g) for g in group_by if g != "day")
                        counts = out.setdefault(k, dict.fromkeys(("new", "open", "pending", "resolved", "closed"), 0))
                        counts[before[-1]] += 1
                day += timedelta(days=1)
            group_by = ("day",) + tuple(g for g in group_by if g != "day")
        else:
            raise ValueError(measure)
        return {k: v for k, v in out.items()}, tuple(group_by)
