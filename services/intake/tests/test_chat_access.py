"""Who sees a chat (``helpdesk_intake.domain.chat.may_see``, issue 17): plain rules, no broker. An agent limited to teams
sees the chats waiting for an agent and the ones they joined; never a conversation another agent is
having or had."""
from types import SimpleNamespace

import pytest

from helpdesk_common.contracts.tickets import Viewer
from helpdesk_intake.domain.chat import _hash, may_see


def chat(state, agent=None):
    return SimpleNamespace(state=state, agent=agent, customer_email="eva@example.se", token_hash=_hash("secret"))


ALPHA = Viewer(actor="token:1", role="agent", teams=["alpha"])


@pytest.mark.parametrize("viewer, token, the_chat, seen", [
    (Viewer(actor="ada", role="admin"), None, chat("active", "token:2"), True),
    (Viewer(actor="token:3", role="agent"), None, chat("ended", "token:2"), True),  # no team limit
    (ALPHA, None, chat("waiting"), True),  # waiting for whoever answers first: nobody's team yet
    (ALPHA, None, chat("active", "token:1"), True),  # their own
    (ALPHA, None, chat("ended", "token:1"), True),
    (ALPHA, None, chat("active", "token:2"), False),  # a colleague's conversation
    (ALPHA, None, chat("ended", "token:2"), False),
    (ALPHA, "secret", chat("active", "token:2"), False),  # a staff token is no chat token
    (Viewer(actor="eva", role="customer", email="Eva@example.se"), None, chat("active", "token:2"), True),
    (Viewer(actor="mal", role="customer", email="mal@example.se"), None, chat("active", "token:2"), False),
    (Viewer(actor="anonymous", role="anonymous"), "secret", chat("active", "token:2"), True),
    (Viewer(actor="anonymous", role="anonymous"), "guess", chat("waiting"), False),
])
def test_who_sees_a_chat(viewer, token, the_chat, seen):
    assert may_see(the_chat, viewer, token) is seen
