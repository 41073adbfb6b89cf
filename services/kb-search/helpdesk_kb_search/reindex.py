"""``kb-reindex``: rebuild the search index from the articles, then swap it in without downtime.

The new generation is written where searches do not look (new Elasticsearch indices, or a new embedded
folder) while the current one keeps answering; articles changed meanwhile are caught up; then the alias
(or the embedded pointer) is swapped atomically, and changes that reached the old generation during the
swap are caught up once more in the new one. Every step is idempotent, so running it twice is harmless.
"""
import argparse
import os
import sys
import time
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker
from tqdm import tqdm

from helpdesk_common.adapters.config import load_config
from helpdesk_common.adapters.database import engine_for
from helpdesk_common.database import utcnow

from . import indexing
from .backends import make_backend
from .domain import index_doc
from .models import Article

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CONFIG = os.path.join(os.path.dirname(HERE), "config.yaml")
# Changes whose transaction began a little before a timestamp was taken are caught up too.
CLOCK_MARGIN = timedelta(seconds=5)


def _catch_up(sessions, since, write, remove):
    with sessions() as session:
        ids = indexing.changed_since(session, since)
        gone = indexing.deleted_since(session, since)
        articles = {a.id: a for a in session.scalars(select(Article).where(Article.id.in_(ids)))} if ids else {}
        docs = [index_doc(a) for a in articles.values() if a.status == "published"]
        removed = sorted({i for i in ids if i not in articles or articles[i].status != "published"} | set(gone))
    if docs:
        write(docs)
    if removed:
        remove(removed)
    return len(docs) + len(removed)


def reindex(sessions, backend, *, batch=500, progress=True, stream=None):
    """Rebuild ``backend`` from the published articles; returns ``{"indexed": n, "caught_up": m}``."""
    backend.ensure_ready()
    started = utcnow() - CLOCK_MARGIN
    with sessions() as session:
        total = session.scalar(select(func.count()).select_from(Article).where(Article.status == "published"))
    rebuild = backend.rebuild()
    indexed = 0
    try:
        with tqdm(total=total, unit="article", desc=f"reindex ({backend.name})", disable=not progress,
                  file=stream or sys.stderr) as bar:
            last_id = 0
            while True:
                with sessions() as session:
                    rows = list(session.scalars(
                        select(Article).where(Article.status == "published", Article.id > last_id)
                        .order_by(Article.id).limit(batch)))
                    docs = [index_doc(a) for a in rows]
                if not docs:
                    break
                rebuild.add(docs)
                indexed += len(docs)
                last_id = rows[-1].id
                bar.update(len(docs))
                time.sleep(0)  # in a service process (eventlet), let searches run between batches
        swapping = utcnow() - CLOCK_MARGIN
        caught_up = _catch_up(sessions, started, rebuild.add, rebuild.delete)
        rebuild.swap()
    except BaseException:
        rebuild.abort()
        raise
    # Writes that went to the old generation between the catch-up and the swap.
    caught_up += _catch_up(sessions, swapping, backend.upsert, backend.delete)
    return {"indexed": indexed, "caught_up": caught_up}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=os.environ.get("HELPDESK_KB_CONFIG", DEFAULT_CONFIG),
                        help="the service's nameko config file (KB_DB_URL, KB_SEARCH_BACKEND, ...)")
    parser.add_argument("--url", help="database URL (overrides the config)")
    parser.add_argument("--backend", choices=["embedded", "elasticsearch"], help="overrides KB_SEARCH_BACKEND")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if args.backend:
        config["KB_SEARCH_BACKEND"] = args.backend
    url = args.url or config["KB_DB_URL"]
    sessions = sessionmaker(engine_for(url), expire_on_commit=False)
    backend = make_backend(config)
    try:
        result = reindex(sessions, backend, batch=args.batch, progress=not args.no_progress)
    finally:
        backend.close()
    print(f"reindexed {result['indexed']} articles into {backend.name}; {result['caught_up']} caught up")
