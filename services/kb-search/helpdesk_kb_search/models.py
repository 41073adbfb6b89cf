"""Tables of the knowledge-base service. Only this service reads or writes them.

The search index (embedded files or Elasticsearch) is not here: it is derived from these tables and can
be rebuilt from them at any time (``kb-reindex``).
"""
from typing import Optional

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from helpdesk_common.inbox import ProcessedEventMixin
from helpdesk_common.database import UtcDateTime, utcnow
from helpdesk_common.outbox import OutboxMixin

Id = BigInteger().with_variant(Integer, "sqlite")  # SQLite only autoincrements INTEGER keys


class Base(DeclarativeBase):
    pass


class Article(Base):
    """An article, FAQ or tutorial in one language. Translations share ``translation_group``."""

    __tablename__ = "articles"
    __table_args__ = (
        Index("ix_articles_updated_at_id", "updated_at", "id"),
        Index("ix_articles_translation_group", "translation_group"),
        Index("ix_articles_language_status", "language", "status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    # The key of an article in the system it was imported from: a repeated import updates, not duplicates.
    external_id: Mapped[Optional[str]] = mapped_column(String(200), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)  # Markdown, as written
    body_html: Mapped[str] = mapped_column(Text)  # rendered and sanitised once, on write
    language: Mapped[str] = mapped_column(String(2))
    type: Mapped[str] = mapped_column(String(10))
    category: Mapped[Optional[str]] = mapped_column(String(200))
    tags: Mapped[list] = mapped_column(JSON, default=list)
    visibility: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10))
    author: Mapped[str] = mapped_column(String(254))
    translation_group: Mapped[str] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    published_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    archived_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)

    versions: Mapped[list["ArticleVersion"]] = relationship(
        back_populates="article", cascade="all, delete-orphan", passive_deletes=True,
        order_by="ArticleVersion.version")

    # Two editors saving the same article at once: the second gets a conflict, not a silent overwrite.
    __mapper_args__ = {"version_id_col": version}


class ArticleVersion(Base):
    """The article as it was after each change, with who made it and what changed."""

    __tablename__ = "article_versions"
    __table_args__ = (UniqueConstraint("article_id", "version"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(254))
    note: Mapped[Optional[str]] = mapped_column(String(500))
    changes: Mapped[list] = mapped_column(JSON, default=list)
    snapshot: Mapped[dict] = mapped_column(JSON)

    article: Mapped[Article] = relationship(back_populates="versions")


class Suggestion(Base):
    """Articles suggested once: to a portal visitor typing a request, or to the agents of a new ticket.

    ``items`` keeps the hits as they were shown (id, title, score, ...; never the typed text). A portal
    suggestion the customer marked as having answered their question (no ticket) has ``deflected_at``.
    """

    __tablename__ = "suggestions"
    __table_args__ = (Index("ix_suggestions_ticket_number_created_at", "ticket_number", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    context: Mapped[str] = mapped_column(String(10))  # portal | ticket
    language: Mapped[str] = mapped_column(String(2))
    ticket_number: Mapped[Optional[str]] = mapped_column(String(40))
    items: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    deflected_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    deflected_article_id: Mapped[Optional[int]] = mapped_column(Id)


class Outbox(OutboxMixin, Base):
    pass


class ProcessedEvent(ProcessedEventMixin, Base):
    pass
