"""``kb-reindex``: rebuild from the articles, swap without failed searches, catch up on changes made meanwhile."""
import threading
import time

import yaml

from helpdesk_common.contracts import validate
from helpdesk_common.contracts.kb import ArticleChanges, NewArticle, Viewer
from helpdesk_kb_search import domain, reindex
from helpdesk_kb_search.backends.base import SearchQuery

AGENT = Viewer(actor="alice", role="agent")


def seed(sessions, count=120):
    ids = []
    with sessions.begin() as session:
        for i in range(count):
            view = domain.create_article(session, validate(NewArticle, {
                "title": f"Printer guide {i}", "body": f"How to fix printer model {i}: replace the toner.",
                "language": ["en", "nl", "sv"][i % 3] if i >= 3 else "en", "status": "published"}), AGENT)
            ids.append(view["id"])
        domain.create_article(session, validate(NewArticle, {"title": "Draft printer", "body": "toner",
                                                             "language": "en"}), AGENT)
    return ids


def hits(backend, text, lang="en", size=50):
    return [h.id for h in backend.search(SearchQuery(text=text, languages=[lang], visibilities=["public"],
                                                     size=size)).hits]


def test_reindex_rebuilds_swaps_and_catches_up(backend, sessions):
    ids = seed(sessions)
    backend.upsert([])  # the current generation is empty: nothing indexed yet
    assert hits(backend, "toner") == []
    original = backend.rebuild
    changed = {}

    def rebuild_with_changes_meanwhile():
        rebuild = original()
        add = rebuild.add

        def add_and_change(docs):
            written = add(docs)
            if not changed:  # while the first batch is written, editors keep working
                with sessions.begin() as session:
                    domain.change_article(session, ids[0], ArticleChanges(status="archived"), AGENT)
                    domain.change_article(session, ids[1], ArticleChanges(title="Scanner calibration"), AGENT)
                    domain.delete_article(session, ids[2], AGENT)
                changed["done"] = True
            return written
        rebuild.add = add_and_change
        return rebuild

    backend.rebuild = rebuild_with_changes_meanwhile
    failures, answers, stop = [], [], threading.Event()

    def search_loop():
        while not stop.is_set():
            try:
                answers.append(len(hits(backend, "printer toner")))
            except Exception as error:  # noqa: BLE001 - any failure is what this test looks for
                failures.append(error)
            time.sleep(0)  # green under eventlet: let the rebuild run

    thread = threading.Thread(target=search_loop)
    thread.start()
    try:
        result = reindex.reindex(sessions, backend, batch=25, progress=False)
    finally:
        stop.set()
        thread.join()
    assert not failures, failures[:3]
    assert len(answers) > 1 and answers[0] == 0  # searches ran before and during the rebuild
    assert len(hits(backend, "printer toner")) > 0
    assert result["indexed"] == 120 and result["caught_up"] >= 3
    en = hits(backend, "printer toner", "en")
    assert ids[0] not in en and ids[2] not in en
    assert hits(backend, "scanner calibration")[:1] == [ids[1]]
    every = set(en) | set(hits(backend, "printer toner", "nl")) | set(hits(backend, "printer toner", "sv"))
    assert backend.count() == 118 and len(every) <= 118


def test_the_command_shows_progress(db_url, sessions, tmp_path, capsys):
    seed(sessions, count=30)
    config = {"KB_DB_URL": db_url, "KB_SEARCH_BACKEND": "embedded", "KB_INDEX_DIR": str(tmp_path / "idx")}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    reindex.main(["--config", str(path), "--batch", "10"])
    out, err = capsys.readouterr()
    assert "reindexed 30 articles into embedded" in out
    assert "reindex (embedded)" in err and "30/30" in err  # the progress bar
    from helpdesk_kb_search.backends.embedded import EmbeddedBackend

    assert EmbeddedBackend(str(tmp_path / "idx")).count() == 30
