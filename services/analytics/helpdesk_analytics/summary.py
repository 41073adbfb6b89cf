"""The key figures of a period (the supervisor dashboard's tiles and the weekly summary mail), and the weekly
summary itself. Plain functions of a session, a viewer and an explicit ``now``: each figure is the report of
its measure (``reports.run``) over the whole period, so the tiles, the mail and the reports API always agree.
"""
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select

from . import reports
from .facts import moment
from .surge_models import SummaryMail, SummaryRecipient

SYSTEM = {"actor": "analytics", "role": "system", "teams": []}
SUMMARY_ROLES = ("supervisor", "admin")
OPEN_CATEGORIES = ("new", "open", "pending")


def _row(session, measure, query, viewer, now):
    rows = reports.run(session, measure, query, viewer, now)["rows"]
    return rows[0] if rows else {}


def key_figures(session, start, end, tz, viewer, now, filters=None):
    """``{created, solved, reopened, backlog (not solved at the period's end, and by category), first_response_median, resolution_median (calendar seconds), *_business_*,
    sla_compliance, sla_count, csat, csat_count, nps, nps_count}`` over ``[start, end)`` as ``viewer`` may see
    them; a figure with nothing to measure is None."""
    query = {"from": start, "to": end, "tz": tz, **(filters or {})}
    volume = _row(session, "volume", query, viewer, now)
    first = _row(session, "first_response", query, viewer, now)
    solved = _row(session, "resolution", query, viewer, now)
    policies = reports.run(session, "sla", query, viewer, now)["rows"]
    counted = sum(p.get("count") or 0 for p in policies)
    kept = counted - sum(p.get("breached") or 0 for p in policies)
    days = reports.run(session, "backlog", dict(query, group_by="day"), viewer, now)["rows"]
    backlog = {category: (days[-1] if days else {}).get(category, 0) for category in OPEN_CATEGORIES}
    csat = _row(session, "csat", query, viewer, now)
    nps = _row(session, "nps", query, viewer, now)
    return {"created": volume.get("created", 0), "solved": volume.get("solved", 0),
            "reopened": volume.get("reopened", 0),
            "backlog": sum(backlog.values()), "backlog_by_category": backlog,
            "first_response_median": first.get("calendar_median"),
            "first_response_business_median": first.get("business_median"),
            "resolution_median": solved.get("calendar_median"),
            "resolution_business_median": solved.get("business_median"),
            "sla_compliance": kept / counted if counted else None, "sla_count": counted,
            "csat": csat.get("csat"), "csat_count": csat.get("count", 0),
            "nps": nps.get("nps"), "nps_count": nps.get("count", 0)}


def last_week(now, tz):
    """``(label, start, end)`` of the ISO week before the one ``now`` is in, in ``tz``: 2026-W45, Monday
    midnight to Monday midnight."""
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    monday = (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    start = (monday - timedelta(days=7)).replace(tzinfo=None).replace(tzinfo=zone)
    monday = monday.replace(tzinfo=None).replace(tzinfo=zone)
    year, week, _ = start.isocalendar()
    return f"{year}-W{week:02d}", start, monday


def _duration(seconds):
    if seconds is None:
        return "-"
    hours = seconds / 3600
    return f"{hours:.1f} h" if hours >= 1 else f"{seconds / 60:.0f} min"


def _share(value):
    return "-" if value is None else f"{100 * value:.0f}%"


def compose(week, figures, start, end):
    """The summary mail's subject and plain-text body."""
    lines = [f"Helpdesk summary for week {week} ({start.date().isoformat()} to "
             f"{(end - timedelta(days=1)).date().isoformat()})", "",
             f"Tickets created:        {figures['created']}",
             f"Tickets solved:         {figures['solved']}",
             f"Tickets reopened:       {figures['reopened']}",
             f"Open at the week's end: {figures['backlog']} (new {figures['backlog_by_category']['new']}, "
             f"open {figures['backlog_by_category']['open']}, pending {figures['backlog_by_category']['pending']})",
             f"First response, median: {_duration(figures['first_response_median'])}"
             f" (business hours: {_duration(figures['first_response_business_median'])})",
             f"Resolution, median:     {_duration(figures['resolution_median'])}"
             f" (business hours: {_duration(figures['resolution_business_median'])})",
             f"SLA compliance:         {_share(figures['sla_compliance'])} of {figures['sla_count']} tickets",
             f"CSAT:                   {_share(figures['csat'])} of {figures['csat_count']} answers",
             f"NPS:                    {'-' if figures['nps'] is None else round(figures['nps'])}"
             f" ({figures['nps_count']} answers)", "",
             "Every figure, by team, channel and priority: the reports in the agent workspace or GET /api/v1/reports."]
    return f"Helpdesk weekly summary {week}", "\n".join(lines) + "\n"


def claim_week(session, week, recipients, now):
    """The recipients not yet sent ``week``'s summary, each now recorded as sent (in the caller's transaction:
    a replica claiming the same at once fails on the key and its rerun finds them taken)."""
    done = set(session.scalars(select(SummaryMail.recipient).where(SummaryMail.week == week)))
    todo = [r for r in dict.fromkeys(recipients) if r not in done]
    for recipient in todo:
        session.add(SummaryMail(week=week, recipient=recipient, sent_at=now))
    session.flush()
    return todo


def release(session, week, recipient):
    """Forget a claim whose mail could not be handed over: the next run tries again."""
    session.execute(delete(SummaryMail).where(SummaryMail.week == week, SummaryMail.recipient == recipient))


def remember_accounts(session, events):
    """Keep the accounts ``account_changed`` events tell, each as its latest ``changed_at`` says (a repeat or
    an older announcement arriving late changes nothing); answers how many rows changed."""
    latest = {}
    for event in events:
        account = (event.get("data") or {}).get("account") or {}
        if not isinstance(account.get("id"), int) or not account.get("email") or not account.get("changed_at"):
            continue  # not an announcement this version can read: ignored, as unknown events are
        at = moment(account["changed_at"])
        if account["id"] not in latest or at >= latest[account["id"]][0]:
            latest[account["id"]] = (at, account)
    changed = 0
    for account_id, (at, account) in latest.items():
        row = session.get(SummaryRecipient, account_id)
        if row is not None and row.changed_at > at:
            continue
        if row is None:
            row = SummaryRecipient(account_id=account_id)
            session.add(row)
        row.email, row.role = account["email"].strip().lower(), account.get("role") or ""
        row.disabled, row.changed_at = bool(account.get("disabled")), at
        changed += 1
    return changed


def recipients(session, extra=()):
    """Who gets the weekly summary: every enabled supervisor and admin account the gateway announced, and the
    ``extra`` addresses (``WEEKLY_SUMMARY_TO``: a list, someone without an account), each once."""
    accounts = session.scalars(select(SummaryRecipient.email).where(
        SummaryRecipient.role.in_(SUMMARY_ROLES), SummaryRecipient.disabled.is_(False))
        .order_by(SummaryRecipient.email))
    return list(dict.fromkeys([*accounts, *(a.strip().lower() for a in extra if a.strip())]))


def send_due(write, read, send, recipients, tz, now):
    """Send last week's summary to each of ``recipients`` not sent it yet. ``write(change)`` runs
    ``change(session)`` in a transaction, ``read(query)`` likewise read-only; ``send(mail)`` hands an
    ``AccountMail`` to the platform's outgoing mail (intake). Answers the recipients sent to."""
    week, start, end = last_week(now, tz)
    todo = write(lambda session: claim_week(session, week, recipients, now))
    if not todo:
        return []
    figures = read(lambda session: key_figures(session, start.isoformat(), end.isoformat(), tz, SYSTEM, now))
    subject, body = compose(week, figures, start, end)
    sent = []
    for recipient in todo:
        try:
            send({"to": recipient, "subject": subject, "body": body, "language": "en"})
            sent.append(recipient)
        except Exception:  # noqa: BLE001 - any failure to hand it over: released, tried again next hour
            write(lambda session, recipient=recipient: release(session, week, recipient))
    return sent
