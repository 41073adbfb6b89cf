"""The shared contracts' own types: EmailAddress reads exactly as pydantic's EmailStr does."""
import pytest
from pydantic import BaseModel, EmailStr

from helpdesk_common.contracts import Contract, EmailAddress, validate
from helpdesk_common.errors import ValidationFailed


class WithAddress(Contract):
    email: EmailAddress


class WithEmailStr(Contract):
    email: EmailStr


ADDRESSES = ["customer17@example.com", "Customer17@EXAMPLE.com", "jöns@exempel.se", "a.b+c@sub.example.nl",
             "x@y", "not an address", "a@b.test", "a@@b.com", "", "  padded@example.com  ", "a" * 70 + "@example.com"]


def outcome(model, address):
    try:
        return validate(model, {"email": address}).email
    except ValidationFailed as error:
        return error.details


@pytest.mark.parametrize("address", ADDRESSES)
def test_the_same_verdict_message_and_normal_form_as_email_str_asked_twice(address):
    expected = outcome(WithEmailStr, address)
    assert outcome(WithAddress, address) == expected
    assert outcome(WithAddress, address) == expected  # the remembered verdict (or a refusal asked again)


def test_the_same_schema_as_email_str():
    class A(BaseModel):
        email: EmailAddress

    class B(BaseModel):
        email: EmailStr

    assert A.model_json_schema()["properties"] == B.model_json_schema()["properties"]
