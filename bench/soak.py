"""The soak (issue 18): 10,000 tickets through the REST API and 2,000 mails through IMAP while every service
process is killed once (SIGKILL, started again), the broker node restarted once and PostgreSQL restarted once;
then the books: sent, accepted, tickets, lost, doubled, parked, and the time to recover after each fault.

    .venv/bin/python bench/soak.py [--tickets 10000] [--mails 2000] [--clients 8] [--gateway-workers 2]

Everything runs on servers of its own (a RabbitMQ node, a PostgreSQL server, Dovecot, an SMTP sink): the
machine's shared RabbitMQ and PostgreSQL are never restarted. The engine is ``tests/soak.py``, which the short
variant in the suite (``tests/test_soak.py``) runs too. Exit status 1 when anything was lost, doubled or left
unsent.
"""
import argparse
import os
import sys
import tempfile
import time
import warnings

warnings.simplefilter("ignore")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

from soak import Soak  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--mails", type=int, default=2_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--gateway-workers", type=int, default=2)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="helpdesk-soak-")
    stamp = lambda text: print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)  # noqa: E731
    with Soak(workdir, tickets=args.tickets, mail_count=args.mails, clients=args.clients,
              gateway_workers=args.gateway_workers, say=stamp) as soak:
        soak.run()
        stamp(f"load done in {soak.duration:.0f} s; reconciling")
        report = soak.reconcile(timeout=900)
        stamp(f"settled {soak.settle_time:.0f} s after the load")
        print()
        print(soak.table())
        if report["parked"]:
            print("\nparked:\n" + report["parked listing"])
        print(f"\n{args.tickets:,} tickets + {args.mails:,} mails, {args.clients} clients, load {soak.duration:.0f} s "
              f"(load average at the end {os.getloadavg()[0]:.1f}); logs in {workdir}")
    bad = (report["api"]["lost"] + report["api"]["doubled"] + report["mail"]["lost"] + report["mail"]["doubled"]
           + report["api"]["mismatched"] + report["unrouted"] + report["decided twice"] + report["facts missing"])
    return 1 if bad or report["unsent"] else 0


if __name__ == "__main__":
    sys.exit(main())
