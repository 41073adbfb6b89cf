"""The short soak (``tests/soak.py``; ``bench/soak.py`` is the long one): a few hundred API tickets and a few
dozen mails while every service process is killed once (SIGKILL) and started again, the broker node restarted
and the PostgreSQL server restarted, all on servers of the soak's own (the machine's shared RabbitMQ and
PostgreSQL are never restarted). Then the books: nothing lost, nothing doubled, every ticket routed once and
counted once, every outbox empty; what was parked is printed with the table.
"""
import pytest

from soak import Soak

# The suite's 600 s per test is for hangs; the soak took 576 s on a 2-core machine at load 30 (179 s less loaded),
# and its own waits all have deadlines.
pytestmark = [pytest.mark.e2e, pytest.mark.other_half, pytest.mark.timeout(1500)]

TICKETS = 300
MAILS = 40


@pytest.fixture(scope="module")
def soak(tmp_path_factory):
    with Soak(tmp_path_factory.mktemp("soak"), tickets=TICKETS, mail_count=MAILS, clients=4) as soak:
        yield soak


def test_every_part_killed_or_restarted_once_under_load_loses_nothing_and_doubles_nothing(soak):
    soak.run()
    report = soak.reconcile(timeout=180)
    print("\n" + soak.table() + ("\nparked:\n" + report["parked listing"] if report["parked"] else ""))
    assert [fault["fault"] for fault in soak.faults] == list(soak.FAULTS)
    api, mail = report["api"], report["mail"]
    assert (api["sent"], api["accepted"], api["not accepted"]) == (TICKETS + len(soak.faults), api["sent"], 0)
    assert (api["lost"], api["doubled"], api["mismatched"]) == (0, 0, 0)
    assert (mail["sent"], mail["lost"], mail["doubled"], mail["not email"]) == (MAILS + len(soak.faults), 0, 0, 0)
    assert api["tickets"] + mail["tickets"] == report["tickets"]  # no ticket of the run that nobody asked for
    # every ticket routed, decided once, the decision applied once; counted once by analytics
    assert (report["unrouted"], report["decided twice"], report["routing unapplied"]) == (0, 0, 0)
    assert (report["facts missing"], report["analytics facts"], report["backlog counted"]) == (
        0, report["tickets"], report["tickets"])
    assert report["unsent"] == {}
