"""The gateway's own tables: API tokens. Only a hash of each token is stored."""
from typing import Optional

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from helpdesk_common.database import UtcDateTime, utcnow


class Base(DeclarativeBase):
    pass


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    email: Mapped[Optional[str]] = mapped_column(String(254))
    teams: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    revoked_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
