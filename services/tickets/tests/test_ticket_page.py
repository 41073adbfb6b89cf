"""The workspace's ticket page's read: the single reads' answers in one session, judged by the same viewer."""
import pytest

from helpdesk_common.contracts.tickets import NewMessage, Viewer
from helpdesk_common.errors import Forbidden, NotFound
from helpdesk_tickets import domain, followers, links, ticket_page


def test_one_read_answers_what_the_single_reads_answer(sessions, rules, open_ticket, admin):
    number = open_ticket(team="network", requester={"email": "eva@example.se"})["number"]
    other = open_ticket(team="network", requester={"email": "eva@example.se"})["number"]
    with sessions.begin() as session:
        domain.add_message(session, number, NewMessage(body="Restarted it", visibility="internal"), admin, rules)
        links.link(session, number, other, admin, rules)
        followers.follow(session, number, admin)
    with sessions() as session:
        page = ticket_page.read(session, number, admin, rules)
        assert page["ticket"] == domain.shown_to(admin, domain.ticket_view(domain.find_ticket(session, number, admin), rules))
        assert page["messages"] == domain.list_messages(session, number, admin)
        assert page["history"] == domain.history(session, number, admin)
        assert page["links"] == links.links_of(session, number, admin)
    assert page["following"]["following"] is True
    assert page["contact"]["id"] == page["ticket"]["requester"]["contact_id"]
    assert [t["number"] for t in page["other_tickets"]] == [other]


def test_it_is_judged_as_the_single_reads(sessions, rules, open_ticket, customer):
    number = open_ticket(team="billing", requester={"email": "carol@example.com"})["number"]
    with sessions() as session, pytest.raises(NotFound):
        ticket_page.read(session, number, Viewer(actor="al", role="agent", teams=["network"]), rules)
    with sessions() as session, pytest.raises(Forbidden):  # the page is for staff: following is
        ticket_page.read(session, number, customer, rules)
