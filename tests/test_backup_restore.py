"""A backup taken while the platform runs, restored later: the platform continues, nothing doubled.

``helpdesk-backup backup`` copies every service's database while the services run (SQLite's online backup
API; ``pg_dump`` for the tickets database in the PostgreSQL run). More tickets are made after it; then the
platform is stopped, ``helpdesk-backup restore`` puts every database back, the search index is rebuilt
(``kb-reindex``) and the platform is started again. What it shows afterwards: the tickets of the backup,
each once; the ones made after the backup gone (that is what a restore means), and new tickets numbered
apart from everything the platform still knows, each routed once. On PostgreSQL the restore also carries
the id sequences over, so the numbers handed out after the backup are not handed out again; SQLite hands
them out again (its ids restart from the restored rows: deploy/README.md, "Backups"). The search index,
deleted and rebuilt, finds the backup's article and not the one written after it.
"""
import os
import shutil
import subprocess
import uuid

import pytest

from stack import BIN, ROOT, EventRecorder, new_ticket, wait_for

pytestmark = pytest.mark.e2e


BODIES = {}  # subject -> the request body sent with it (a retry must send the same one)


def create(platform, api, subjects):
    """{subject: number} of a new ticket per subject (each with its own Idempotency-Key, the subject)."""
    numbers = {}
    for subject in subjects:
        BODIES[subject] = new_ticket(subject=subject)
        response = api.post(f"{platform.url}/api/v1/tickets", json=BODIES[subject],
                            headers={"Idempotency-Key": subject}, timeout=30)
        assert response.status_code == 201, response.text
        numbers[subject] = response.json()["number"]
    return numbers


def routed(platform, api, numbers):
    def every_one():
        states = [api.get(f"{platform.url}/api/v1/tickets/{number}/routing", timeout=30) for number in numbers]
        return all(answer.status_code == 200 and answer.json().get("state") in ("queued", "assigned")
                   for answer in states)
    wait_for(every_one, timeout=60, interval=0.2, what=f"routing of {len(numbers)} tickets")


def listed(platform, api, text):
    found, cursor = [], None
    while True:
        page = api.get(f"{platform.url}/api/v1/tickets",
                       params={"text": text, "limit": 50, **({"cursor": cursor} if cursor else {})}, timeout=30).json()
        found += [(ticket["subject"], ticket["number"]) for ticket in page["items"]]
        cursor = page.get("next_cursor")
        if not cursor or len(found) > 100:
            return sorted(found)


def article(platform, api, word):
    response = api.post(f"{platform.url}/api/v1/kb/articles", json={
        "title": f"Resetting the {word} token", "body": f"How to reset a {word} token in the portal.",
        "language": "en", "type": "faq", "category": "account/login", "tags": ["token"], "visibility": "public",
        "status": "published"}, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def found(platform, word):
    response = platform.session().get(f"{platform.url}/api/v1/kb/search", params={"q": word, "lang": "en"}, timeout=30)
    assert response.status_code == 200, response.text
    return [hit["id"] for hit in response.json()["items"]]


def tool(platform, *args):
    result = subprocess.run([os.path.join(BIN, "helpdesk-backup"), *args], cwd=ROOT, env=platform.env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def restart(platform):
    for process in [platform.gateway, *platform.tickets, *platform.services.values()]:
        platform.stop_process(process)
    platform.tickets.clear()
    yield  # everything is stopped here
    platform.start_tickets()
    for name in platform.service_names:
        platform.start_service(name)
    platform.start_gateway()
    platform.wait_healthy(timeout=120)


def test_a_backup_restored_while_tickets_came_after_it_continues_without_duplicates(platform, tmp_path):
    api = platform.session()
    run = f"backup-{uuid.uuid4().hex[:8]}"
    before = create(platform, api, [f"{run}-a{index}" for index in range(5)])
    routed(platform, api, before.values())
    kept_word, lost_word = f"kept{uuid.uuid4().hex[:8]}", f"lost{uuid.uuid4().hex[:8]}"
    kept = article(platform, api, kept_word)
    wait_for(lambda: found(platform, kept_word) == [kept], timeout=30, what="the article to be indexed")

    backup_dir = tmp_path / "backup"
    tool(platform, "backup", str(backup_dir))  # the platform runs meanwhile
    manifest = (backup_dir / "manifest.json").read_text()
    assert all(f'"{name}"' in manifest for name in ("tickets", "gateway", "intake", "routing", "kb", "surveys",
                                                     "analytics"))

    after = create(platform, api, [f"{run}-b{index}" for index in range(5)])
    routed(platform, api, after.values())
    lost = article(platform, api, lost_word)
    wait_for(lambda: found(platform, lost_word) == [lost], timeout=30, what="the later article to be indexed")
    assert listed(platform, api, run) == sorted({**before, **after}.items())

    steps = restart(platform)
    next(steps)
    tool(platform, "restore", str(backup_dir))
    index_dir = platform.env()["HELPDESK_KB_INDEX_DIR"]
    shutil.rmtree(index_dir, ignore_errors=True)  # the index is not in the backup: it is rebuilt
    subprocess.run([os.path.join(BIN, "kb-reindex")], cwd=ROOT, env=platform.env(), check=True,
                   capture_output=True, timeout=300)
    next(steps, None)

    # The backup's tickets, each once; those made after it are gone with the restore.
    assert listed(platform, api, run) == sorted(before.items())
    # The rebuilt index has the backup's article, and not the one written after it.
    assert found(platform, kept_word) == [kept] and found(platform, lost_word) == []
    # A retried request of the backup's time still finds its ticket (the idempotency keys came back too).
    first = next(iter(before))
    again = api.post(f"{platform.url}/api/v1/tickets", json=BODIES[first],
                     headers={"Idempotency-Key": first}, timeout=30)
    assert again.status_code == 200 and again.json()["number"] == before[first]

    with EventRecorder(platform.amqp_uri, source="routing") as decisions:
        later = create(platform, api, [f"{run}-c{index}" for index in range(5)])
        routed(platform, api, later.values())
        everything = listed(platform, api, run)
        assert everything == sorted({**before, **later}.items())
        assert len({number for _, number in everything}) == len(everything)  # no number twice
        if platform.kind == "postgres":  # the sequences were carried over: no number of the lost tickets again
            assert set(later.values()).isdisjoint(after.values())
        for number in later.values():  # each new ticket decided once (by event id)
            decided = wait_for(lambda: decisions.of("ticket_queued", number) + decisions.of("ticket_assigned", number),
                               timeout=60, what=f"the routing decision for {number}")
            assert len({event["id"] for event in decided}) == 1
