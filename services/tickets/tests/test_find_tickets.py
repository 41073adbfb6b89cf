"""Listing tickets: every filter, literal text search, keyset pagination."""
import pytest

from helpdesk_common.contracts.tickets import TicketChanges, TicketQuery
from helpdesk_common.errors import ValidationFailed
from ticket_changes import change_ticket
from helpdesk_tickets import domain


def _page(sessions, viewer, **filters):
    with sessions() as session:
        return domain.find_tickets(session, TicketQuery.model_validate(filters), viewer)


def _numbers(sessions, viewer, **filters):
    return [t["number"] for t in _page(sessions, viewer, limit=100, **filters)["items"]]


def _change(sessions, rules, viewer, number, **changes):
    return change_ticket(sessions, rules, viewer, number, **changes)


@pytest.fixture
def tickets(sessions, rules, admin, open_ticket):
    """Five tickets with distinct fields; returned oldest first."""
    made = [
        open_ticket(subject="Invoice wrong", description="billed twice", priority="high", team="billing",
                    requester={"email": "carol@example.com"}),
        open_ticket(subject="100% CPU", description="the server is at 100%", priority="urgent",
                    team="hardware", requester={"email": "dave@example.com"}),
        open_ticket(subject="user_name field", description="cannot edit user_name", team="billing",
                    requester={"email": "Erin@Example.com"}),
        open_ticket(subject="username rules", description="what is allowed in a username?",
                    requester={"email": "carol@example.com"}),
        open_ticket(subject="Path C:\\temp", description="backslash in path", priority="low",
                    requester={"email": "dave@example.com"}),
    ]
    numbers = [t["number"] for t in made]
    _change(sessions, rules, admin, numbers[0], status="pending", assignee="alan")
    _change(sessions, rules, admin, numbers[1], assignee="alan")
    _change(sessions, rules, admin, numbers[2], status="resolved", assignee="bea")
    return numbers


def test_no_filter_lists_newest_first(sessions, admin, tickets):
    assert _numbers(sessions, admin) == tickets[::-1]


@pytest.mark.parametrize("filters,expected", [
    ({"status": "new"}, [4, 3, 1]),
    ({"status": "pending"}, [0]),
    ({"status": "closed"}, []),
    ({"priority": "urgent"}, [1]),
    ({"priority": "normal"}, [3, 2]),
    ({"assignee": "alan"}, [1, 0]),
    ({"assignee": "bea"}, [2]),
    ({"team": "billing"}, [2, 0]),
    ({"requester": "carol@example.com"}, [3, 0]),
    ({"requester": "ERIN@example.com"}, [2]),
    ({"requester": "nobody@example.com"}, []),
    ({"status": "new", "priority": "urgent", "assignee": "alan", "team": "hardware"}, [1]),
    ({"team": "billing", "requester": "carol@example.com", "status": "pending"}, [0]),
], ids=lambda value: str(value) if isinstance(value, dict) else "")
def test_filters(sessions, admin, tickets, filters, expected):
    assert _numbers(sessions, admin, **filters) == [tickets[i] for i in expected]


@pytest.mark.parametrize("text,expected", [
    ("invoice", [0]),            # case-insensitive
    ("BILLED", [0]),             # in the description too
    ("100%", [1]),               # % is a character, not a wildcard
    ("%", [1]),
    ("user_name", [2]),          # _ is a character, not a wildcard: "username" does not match
    ("_", [2]),
    ("username", [3]),
    ("C:\\temp", [4]),           # so is the escape character itself
    ("\\", [4]),
    ("nothing like this", []),
])
def test_text_search_is_literal(sessions, admin, tickets, text, expected):
    assert _numbers(sessions, admin, text=text) == [tickets[i] for i in reversed(expected)]


def test_pagination_visits_every_ticket_once(sessions, admin, open_ticket):
    made = [open_ticket(subject=f"ticket {i}", priority="high" if i % 3 == 0 else "normal")["number"]
            for i in range(23)]
    seen, cursor, pages = [], None, 0
    while True:
        page = _page(sessions, admin, limit=5, **({"cursor": cursor} if cursor else {}))
        pages += 1
        seen.extend(t["number"] for t in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["items"]) == 5
    assert pages == 5
    assert seen == made[::-1]  # newest first, no gap, no repeat

    # with a filter, across pages of exactly the limit: the last page must not promise more
    high, cursor = [], None
    while True:
        page = _page(sessions, admin, limit=4, priority="high", **({"cursor": cursor} if cursor else {}))
        high.extend(t["number"] for t in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert high == [n for i, n in enumerate(made) if i % 3 == 0][::-1]
    assert len(high) == 8


def test_tickets_opened_while_paging_cause_no_repeats(sessions, admin, open_ticket):
    made = [open_ticket(subject=f"ticket {i}")["number"] for i in range(6)]
    first = _page(sessions, admin, limit=3)
    open_ticket(subject="a newcomer")  # lands before the first page: keyset cursors are unaffected
    second = _page(sessions, admin, limit=3, cursor=first["next_cursor"])
    assert [t["number"] for t in first["items"] + second["items"]] == made[::-1]
    assert second["next_cursor"] is None


def test_exact_page_has_no_next_cursor(sessions, admin, open_ticket):
    for i in range(3):
        open_ticket(subject=f"ticket {i}")
    page = _page(sessions, admin, limit=3)
    assert len(page["items"]) == 3 and page["next_cursor"] is None
    assert _page(sessions, admin, limit=3, status="closed") == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("cursor", ["abc", "-1", "1.5", "1 2", "²", "١٢", "9" * 40])
def test_a_cursor_this_api_did_not_give_out_is_rejected(sessions, admin, open_ticket, cursor):
    open_ticket()
    with pytest.raises(ValidationFailed) as caught:
        _page(sessions, admin, cursor=cursor)
    assert caught.value.details[0]["field"] == "cursor"
    assert caught.value.details[0]["code"] == "invalid_format"
