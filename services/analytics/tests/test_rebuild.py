"""``analytics-rebuild`` from the tickets service's export, while live events keep arriving: the reports equal
the recount from the raw events, nothing counted twice. The export here is made from the generated history
(tests/test_analytics_e2e.py rebuilds from a real tickets service)."""
import io
import random
from datetime import timedelta

from analytics_history import CALENDARS, START, STATUSES, export_of, generate
from analytics_recount import Recount
from helpdesk_analytics import rebuild, reports
from test_reports_match_recount import ADMIN, CASES, END, NOW, assert_same, feed


def test_a_rebuild_between_live_events_counts_each_moment_once(sessions, settings):
    events = generate(tickets=300, weeks=4, seed=5)
    rng = random.Random(1)
    shuffled = events[:]
    rng.shuffle(shuffled)
    half = len(shuffled) // 2
    feed(sessions, settings, shuffled[:half])  # live traffic so far
    shown = io.StringIO()
    done = rebuild.rebuild(export_of(events, page_size=64), sessions, settings, page_size=64,
                           report=lambda d, t, s: rebuild.progress(d, t, s, stream=shown))
    assert done == 300 and "300/300 tickets" in shown.getvalue()
    feed(sessions, settings, shuffled[half:] + shuffled[:half // 3])  # the rest, and some again
    recount = Recount(events, STATUSES, CALENDARS)
    with sessions() as session:
        for measure, group_by in CASES:
            query = {"from": START.isoformat(), "to": END.isoformat(), "tz": "UTC", "group_by": ",".join(group_by)}
            expected, grouped = recount.report(measure, START, END, group_by, now=NOW)
            assert_same(reports.run(session, measure, query, ADMIN, NOW), expected, grouped)


def test_a_rebuild_alone_gives_the_ticket_figures_of_the_events(sessions, settings, db_url):
    events = generate(tickets=200, weeks=2, seed=9)
    rebuild.rebuild(export_of(events), sessions, settings, report=lambda *a: None)
    recount = Recount(events, STATUSES, CALENDARS)
    end = START + timedelta(days=20)
    with sessions() as session:
        for measure in ("volume", "first_response", "resolution", "one_touch", "backlog"):
            query = {"from": START.isoformat(), "to": end.isoformat(), "tz": "UTC", "group_by": "day"}
            expected, grouped = recount.report(measure, START, end, ("day",), now=NOW)
            assert_same(reports.run(session, measure, query, ADMIN, NOW), expected, grouped)
