"""Surge detection: false alarms on quiet synthetic months, and how soon an injected surge is found.

    .venv/bin/python bench/surges.py [--months 5]

Each month (services/analytics/tests/surge_month.py, one seed each, after four weeks of history) is judged
every 5 minutes as the service's timer would (it looks every minute); then the same month with 20 tickets of a
new problem injected within 40 minutes on a weekday morning. Prints one row per month: evaluations, alarms on
the quiet month (each alarm is one surge announced; the detector names the kind and the value), the delay from
the first injected ticket to the first alarm, and the time one evaluation takes.
"""
import argparse
import os
import sys
import time
from datetime import timedelta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "services", "analytics", "tests"))

from helpdesk_analytics import surges  # noqa: E402
from surge_month import MONTH, MONTH_START, inject, quiet  # noqa: E402

STEP = timedelta(minutes=5)
SURGE_AT = MONTH_START + timedelta(days=9, hours=10, minutes=7)


def run(arrivals, start, end):
    index, now, alarms, runs = surges.Arrivals(arrivals), start, [], 0
    began = time.perf_counter()
    while now < end:
        runs += 1
        alarms.extend((now, s) for s in surges.detect(index, now))
        now += STEP
    return runs, alarms, (time.perf_counter() - began) / runs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", type=int, default=5)
    args = parser.parse_args()
    print(f"{'seed':>4} {'tickets':>8} {'evaluations':>11} {'quiet alarms':>12} {'surge found after':>17} {'ms/eval':>8}")
    total_runs = total_alarms = 0
    for seed in range(1, args.months + 1):
        month = quiet(seed)
        runs, alarms, per_run = run(month, MONTH_START, MONTH_START + MONTH)
        _, found, _ = run(inject(month, SURGE_AT, count=20, minutes=40)[0], SURGE_AT, SURGE_AT + 2 * surges.WINDOW)
        delay = f"{(found[0][0] - SURGE_AT).total_seconds() / 60:.0f} min" if found else "not found"
        total_runs, total_alarms = total_runs + runs, total_alarms + len(alarms)
        print(f"{seed:>4} {len(month):>8} {runs:>11} {len(alarms):>12} {delay:>17} {per_run * 1000:>8.2f}")
    print(f"false alarms: {total_alarms} in {args.months} quiet months ({total_runs} evaluations), "
          f"{total_alarms / args.months:.2f} a month")


if __name__ == "__main__":
    main()
