"""``kb-import``: import articles from a JSON or JSON-lines file (a list of articles, or one a line).

Each article has the fields of ``POST /api/v1/kb/articles`` (title, body, language, type, category,
tags, visibility, status, external_id). An ``external_id`` already known updates that article, so an
import can be repeated. Articles are written in batches, each batch with its events in one transaction;
the running service indexes them from those events (or run ``kb-reindex`` after a very large import).
"""
import argparse
import json
import os

from sqlalchemy.orm import sessionmaker
from tqdm import tqdm

from helpdesk_common.adapters.config import load_config
from helpdesk_common.contracts import validate
from helpdesk_common.contracts.kb import BulkImport, Viewer
from helpdesk_common.adapters.database import engine_for

from . import domain

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CONFIG = os.path.join(os.path.dirname(HERE), "config.yaml")


def read_articles(path):
    with open(path, encoding="utf-8") as stream:
        head = stream.read(1)
        stream.seek(0)
        if head == "[":
            return json.load(stream)
        return [json.loads(line) for line in stream if line.strip()]


def import_all(sessions, articles, viewer, *, batch=500, progress=False):
    """Import ``articles`` (dicts) in batches; returns the summed report."""
    report = {"created": 0, "updated": 0, "ids": []}
    with tqdm(total=len(articles), unit="article", disable=not progress) as bar:
        for start in range(0, len(articles), batch):
            chunk = articles[start:start + batch]
            command = validate(BulkImport, {"articles": chunk})
            with sessions.begin() as session:
                result = domain.import_articles(session, command, viewer)
            for key in ("created", "updated"):
                report[key] += result[key]
            report["ids"].extend(result["ids"])
            bar.update(len(chunk))
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", help="JSON (a list) or JSON lines (one article a line)")
    parser.add_argument("--config", default=os.environ.get("HELPDESK_KB_CONFIG", DEFAULT_CONFIG))
    parser.add_argument("--url", help="database URL (overrides the config)")
    parser.add_argument("--actor", default="kb-import", help="recorded as the author of new articles")
    args = parser.parse_args(argv)
    url = args.url or load_config(args.config)["KB_DB_URL"]
    sessions = sessionmaker(engine_for(url), expire_on_commit=False)
    viewer = Viewer(actor=args.actor, role="system")
    report = import_all(sessions, read_articles(args.file), viewer, progress=True)
    print(f"imported: {report['created']} created, {report['updated']} updated")
