"""``@name`` in an internal note: which agents it names (``api.notifications.mentioned``)."""
from helpdesk_gateway.api.notifications import mentioned, with_mentions

AGENTS = [{"assignee": "agent-1", "name": "Ada Lovelace", "email": "ada@example.org"},
          {"assignee": "agent-2", "name": "Bo Berg", "email": "bo.berg@example.org"},
          {"assignee": "agent-3", "name": "Bo Ek", "email": "ek@example.org"}]


def test_an_agent_is_named_by_email_local_part_first_name_or_whole_name():
    assert mentioned("@ada and @bo.berg, also @BoEk.", AGENTS) == ["agent-1", "agent-2", "agent-3"]


def test_a_name_several_agents_answer_to_names_none_and_addresses_are_no_mentions():
    assert mentioned("@bo please", AGENTS) == []  # Bo Berg and Bo Ek: never guessed
    assert mentioned("mail ada@example.org", AGENTS) == []
    assert mentioned("@nobody", AGENTS) == []


def test_only_internal_notes_without_explicit_mentions_are_read():
    public = {"body": "@ada hi", "visibility": "public"}
    assert with_mentions(public) is public
    given = {"body": "@ada hi", "visibility": "internal", "mentions": ["agent-9"]}
    assert with_mentions(given) is given
