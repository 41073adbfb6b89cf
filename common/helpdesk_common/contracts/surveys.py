"""Contracts of customer satisfaction: the answers to CSAT and NPS surveys.

The survey service (``surveys``) asks and records; analytics and integrators learn the answers from its
events. Both sides meet on these two models.
"""
from datetime import datetime
from typing import Annotated, Optional

from pydantic import Field, StringConstraints

from . import Moment, RecordId, View

__all__ = ["CsatSubmitted", "NpsSubmitted", "TicketSatisfaction"]

Comment = Annotated[str, StringConstraints(max_length=5000)]
# The bounds are analytics' columns (survey_answers): longer text would fail there, on PostgreSQL, as a 500.
AnswerId = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Label = Annotated[str, StringConstraints(max_length=100)]
Code = Annotated[str, StringConstraints(max_length=40)]
LanguageTag = Annotated[str, StringConstraints(max_length=10)]


class CsatSubmitted(View):
    """A customer rated how one ticket went, 1 (very unhappy) to 5 (very happy). One survey per ticket: a later
    answer to the same survey replaces the earlier one (``replaces`` names the answer it replaces), so a
    consumer counts the latest answer of each ``survey_id``."""

    survey_id: AnswerId
    answer_id: AnswerId
    replaces: Optional[AnswerId] = None
    ticket: Code
    contact_id: Optional[RecordId] = None
    rating: Annotated[int, Field(ge=1, le=5)]
    comment: Optional[Comment] = None
    channel: Code
    team: Optional[Label] = None
    assignee: Optional[Label] = None
    language: Optional[LanguageTag] = None
    submitted_at: Moment


class NpsSubmitted(View):
    """A customer said how likely they are to recommend the service, 0 to 10, and why. Promoters answer 9-10,
    detractors 0-6. As with CSAT, a later answer to the same survey replaces the earlier one."""

    survey_id: AnswerId
    answer_id: AnswerId
    replaces: Optional[AnswerId] = None
    contact_id: Optional[RecordId] = None
    score: Annotated[int, Field(ge=0, le=10)]
    comment: Optional[Comment] = None
    language: Optional[LanguageTag] = None
    submitted_at: Moment


class TicketSatisfaction(View):
    """What agents see of a ticket's CSAT survey (``GET /api/v1/tickets/{number}/satisfaction``): nulls when
    its customer was never asked; ``rating`` null when asked and not answered yet."""

    ticket_number: str
    asked_at: Optional[datetime] = None
    rating: Optional[int] = None
    comment: Optional[str] = None
    answered_at: Optional[datetime] = None
    language: Optional[str] = None
