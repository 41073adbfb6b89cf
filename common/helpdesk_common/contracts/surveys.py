"""Contracts of customer satisfaction: the answers to CSAT and NPS surveys.

The survey service (``surveys``) asks and records; analytics and integrators learn the answers from its
events. Both sides meet on these two models.
"""
from datetime import datetime
from typing import Annotated, Optional

from pydantic import Field, StringConstraints

from . import RecordId, View

__all__ = ["CsatSubmitted", "NpsSubmitted", "TicketSatisfaction"]

Comment = Annotated[str, StringConstraints(max_length=5000)]


class CsatSubmitted(View):
    """A customer rated how one ticket went, 1 (very unhappy) to 5 (very happy). One survey per ticket: a later
    answer to the same survey replaces the earlier one (``replaces`` names the answer it replaces), so a
    consumer counts the latest answer of each ``survey_id``."""

    survey_id: str
    answer_id: str
    replaces: Optional[str] = None
    ticket: str
    contact_id: Optional[RecordId] = None
    rating: Annotated[int, Field(ge=1, le=5)]
    comment: Optional[Comment] = None
    channel: str
    team: Optional[str] = None
    assignee: Optional[str] = None
    language: Optional[str] = None
    submitted_at: datetime


class NpsSubmitted(View):
    """A customer said how likely they are to recommend the service, 0 to 10, and why. Promoters answer 9-10,
    detractors 0-6. As with CSAT, a later answer to the same survey replaces the earlier one."""

    survey_id: str
    answer_id: str
    replaces: Optional[str] = None
    contact_id: Optional[RecordId] = None
    score: Annotated[int, Field(ge=0, le=10)]
    comment: Optional[Comment] = None
    language: Optional[str] = None
    submitted_at: datetime


class TicketSatisfaction(View):
    """What agents see of a ticket's CSAT survey (``GET /api/v1/tickets/{number}/satisfaction``): nulls when
    its customer was never asked; ``rating`` null when asked and not answered yet."""

    ticket_number: str
    asked_at: Optional[datetime] = None
    rating: Optional[int] = None
    comment: Optional[str] = None
    answered_at: Optional[datetime] = None
    language: Optional[str] = None
