"""The interface every search backend implements, and the plain data that crosses it.

A backend stores :class:`IndexDoc` (what search needs of a published article, derived from the
database) and answers :class:`SearchQuery`. It never decides who may see what: the caller puts the
visibilities a viewer may see into the query, and the backend filters on them.

Rebuilding (``kb-reindex``) goes through :meth:`SearchBackend.rebuild`: documents are written into a new
generation that searches do not see, which is then swapped in atomically (an alias swap on
Elasticsearch, a pointer file on the embedded backend); searches keep answering from the old generation
until the swap.
"""
import base64
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Iterable, Optional

from helpdesk_common.contracts.kb import LANGUAGES


class BadCursor(ValueError):
    """A paging cursor that this backend did not hand out."""


@dataclass(frozen=True)
class IndexDoc:
    id: int
    version: int
    title: str
    text: str  # the body as plain text
    language: str
    type: str
    visibility: str
    category: Optional[str] = None
    tags: tuple = ()
    updated_at: Optional[str] = None


@dataclass
class SearchQuery:
    text: str
    languages: list = field(default_factory=lambda: ["en"])
    visibilities: list = field(default_factory=lambda: ["public"])
    types: Optional[list] = None
    category: Optional[str] = None
    tags: Optional[list] = None
    size: int = 10
    cursor: Optional[str] = None
    prefix: bool = False  # the last word is still being typed (suggestions)
    highlight: bool = True


@dataclass
class Hit:
    id: int
    score: float
    title: str
    snippet: str
    language: str
    type: str
    visibility: str
    category: Optional[str] = None
    tags: list = field(default_factory=list)

    def as_dict(self):
        return {"id": self.id, "title": self.title, "snippet": self.snippet, "score": round(self.score, 4),
                "language": self.language, "type": self.type, "category": self.category,
                "tags": list(self.tags), "visibility": self.visibility}


@dataclass
class Results:
    hits: list
    total: int
    next_cursor: Optional[str] = None


class Rebuild(ABC):
    """A generation being built. ``add`` documents, then ``swap`` it in (or ``abort``)."""

    @abstractmethod
    def add(self, docs: Iterable[IndexDoc]) -> int:
        """Write documents to the new generation; returns how many."""

    @abstractmethod
    def delete(self, ids: Iterable[int]) -> None:
        """Remove documents from the new generation (articles deleted while it was being built)."""

    @abstractmethod
    def swap(self) -> None:
        """Make the new generation the one searches and writes use; the old one is dropped."""

    @abstractmethod
    def abort(self) -> None:
        """Forget the new generation; the current one stays."""


class SearchBackend(ABC):
    name = "abstract"

    @abstractmethod
    def ensure_ready(self) -> None:
        """Create an empty current generation if there is none (idempotent)."""

    @abstractmethod
    def upsert(self, docs: Iterable[IndexDoc]) -> int:
        """Add or replace documents. A document older (lower ``version``) than the indexed one is skipped,
        so replays and reordered deliveries never roll the index back. Returns how many were written."""

    @abstractmethod
    def delete(self, ids: Iterable[int]) -> None:
        """Remove documents; unknown ids are fine (idempotent)."""

    @abstractmethod
    def search(self, query: SearchQuery) -> Results:
        """Ranked hits of one page, best first, with ``next_cursor`` when more may follow."""

    @abstractmethod
    def count(self) -> int:
        """Documents in the current generation."""

    @abstractmethod
    def indexed_versions(self, ids: Iterable[int]) -> dict:
        """``{id: version}`` of the given documents that are indexed."""

    @abstractmethod
    def rebuild(self) -> Rebuild:
        """Start a new generation."""

    def close(self) -> None:
        pass


def check_languages(languages):
    unknown = [lang for lang in languages if lang not in LANGUAGES]
    if unknown:
        raise ValueError(f"unsupported languages: {unknown}")


def encode_cursor(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor, kind):
    """The payload of a cursor made by :func:`encode_cursor` for backend ``kind``, or :class:`BadCursor`."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        raise BadCursor("this cursor is not one this service handed out") from None
    if not isinstance(value, dict) or value.get("k") != kind:
        raise BadCursor("this cursor belongs to another search backend or query")
    return value
