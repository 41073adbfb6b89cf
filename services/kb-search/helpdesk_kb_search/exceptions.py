"""Errors of the knowledge-base service.

Callers receive the shared error classes of ``helpdesk_common.errors`` (which nameko rebuilds on the
caller's side) with a code particular to the knowledge base; these are constructors, not classes.
"""
from helpdesk_common.errors import Conflict, Forbidden, NotFound, ValidationFailed


def article_not_found(article_id):
    return NotFound(f"There is no article {article_id!s} (or you may not see it).", code="article_not_found")


def staff_only(what="change articles"):
    return Forbidden(f"Only agents and admins can {what}.", code="agents_only")


def version_mismatch(article_id, expected, actual):
    return Conflict(
        f"Article {article_id} is at version {actual}, not {expected}: someone else changed it; reload and retry.",
        code="version_mismatch", details=[{"field": "expected_version", "expected": expected, "actual": actual}])


def concurrent_change(article_id):
    return Conflict(f"Article {article_id} was changed by someone else at the same moment; reload and retry.",
                    code="concurrent_change")


def external_id_taken(external_id):
    return Conflict(f"An article with external_id {external_id!r} exists already; update it instead.",
                    code="external_id_taken")


def bad_cursor(reason):
    return ValidationFailed(f"The paging cursor is not valid: {reason}.", code="bad_cursor",
                            details=[{"field": "cursor", "code": "invalid_value", "message": reason}])


def unknown_translation(article_id):
    return ValidationFailed(f"translation_of names article {article_id}, which does not exist.",
                            details=[{"field": "translation_of", "code": "invalid_value",
                                      "message": "no such article"}])


def suggestion_not_found(suggestion_id):
    return NotFound(f"There is no suggestion {suggestion_id!s}.", code="suggestion_not_found")


def not_a_portal_suggestion(suggestion_id):
    return Conflict(f"Suggestion {suggestion_id!s} was made for a ticket's agents, not to a portal visitor: "
                    "it cannot deflect a ticket.", code="not_a_portal_suggestion")
