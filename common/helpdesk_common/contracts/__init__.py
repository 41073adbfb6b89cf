"""Validated shapes of what crosses a service boundary: RPC commands, their answers, event data.

Both sides import the same models: a service validates what it receives with them, the gateway
documents its API (OpenAPI) and the event catalogue (AsyncAPI) from them.
"""
import functools
from datetime import timezone
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, EmailStr, Field


class Contract(BaseModel):
    """Base for inbound commands: unknown fields are rejected, types are not coerced from strings."""

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)


class View(BaseModel):
    """Base for answers and event data: consumers ignore fields they do not know."""

    model_config = ConfigDict(extra="ignore")


MAX_RECORD_ID = 2**63 - 1
RecordId = Annotated[int, Field(ge=1, le=MAX_RECORD_ID)]
"""The id of a stored record (an article, a contact, an agent): a positive 64-bit integer. A larger number
names no record, and the databases cannot even compare with it (SQLite raises OverflowError), so it is
refused as ``out_of_range`` where it comes in rather than failing as a 500 in the owning service."""


def _in_utc(value):
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("lies outside the years 1 to 9999 once moved to UTC") from None


Moment = Annotated[AwareDatetime, AfterValidator(_in_utc)]
"""A moment given from outside (an answer's ``submitted_at``): with its offset, and storable as UTC, which every
table keeps (``UtcDateTime``); ``0001-01-01T00:00:00+14:00`` is refused here, not a 500 in the database."""


@functools.lru_cache(maxsize=16384)
def _normalised_email(address):
    return EmailStr._validate(address)


class EmailAddress(EmailStr):
    """pydantic's ``EmailStr`` (the same checks, errors, normal form and schema), with the verdict on each
    valid address remembered: the same customers and agents write again and again, and ``email_validator``
    takes about 45 microseconds an address, a tenth of opening a ticket's CPU in the tickets service."""

    @classmethod
    def _validate(cls, input_value, /):
        return _normalised_email(input_value)


_CODES = {
    "missing": "missing",
    "extra_forbidden": "unknown_field",
    "literal_error": "invalid_choice",
    "enum": "invalid_choice",
    "string_too_short": "too_short",
    "string_too_long": "too_long",
    "too_short": "too_short",
    "too_long": "too_long",
    "string_pattern_mismatch": "invalid_format",
    "greater_than_equal": "out_of_range",
    "less_than_equal": "out_of_range",
    "value_error": "invalid_value",
}


def validate(model, data, *, prefix="", strict=None):
    """Validate ``data`` against ``model`` or raise ``ValidationFailed`` listing every problem.

    Each problem is ``{"field": "requester.email", "code": "invalid_value", "message": "..."}``; codes
    are stable (``missing``, ``unknown_field``, ``wrong_type``, ``invalid_choice``, ...).
    """
    from pydantic import ValidationError

    from ..errors import ValidationFailed

    try:
        return model.model_validate(data, strict=strict)
    except ValidationError as error:
        details = []
        for problem in error.errors(include_url=False):
            kind = problem["type"]
            code = _CODES.get(kind, "wrong_type" if kind.endswith("_type") else "invalid_value")
            field = ".".join(str(part) for part in problem["loc"]) or "(body)"
            message = problem["msg"]
            if kind == "extra_forbidden":
                message = "this field is not known here; check its spelling"
            details.append({"field": prefix + field, "code": code, "message": message})
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:3])
        raise ValidationFailed(f"The request is not valid: {summary}", details=details) from None


def given_fields(changes, changeable, not_null=()):
    """The fields a partial update (PATCH) sets, in ``changeable`` order.

    A field that was left out is not changed; ``null`` clears a field, except those in ``not_null``,
    which must keep a value: asking to clear one is refused, listing each.
    """
    from ..errors import ValidationFailed

    given = [field for field in changeable if field in changes.model_fields_set]
    nulls = [field for field in given if field in not_null and getattr(changes, field) is None]
    if nulls:
        raise ValidationFailed(f"{', '.join(nulls)} cannot be null.",
                               details=[{"field": f, "code": "null_not_allowed", "message": "give a value"}
                                        for f in nulls])
    return given
