"""Customer satisfaction on a ticket, for agents: the rating and comment its customer gave (surveys)."""
from flask import Blueprint, jsonify

from helpdesk_common.contracts.surveys import TicketSatisfaction

from . import operation, services, viewer

bp = Blueprint("surveys", __name__, url_prefix="/api/v1")


@operation(bp, "/tickets/<number>/satisfaction", "GET", summary="The customer's rating of a ticket",
           tag="tickets", answer=TicketSatisfaction, roles=("admin", "agent"), errors=(404,))
def ticket_satisfaction(number):
    """The CSAT survey of the ticket: when it was asked, the latest rating (1-5) and comment, when answered.
    All null when the customer was never asked (not resolved yet, or a channel without survey mail)."""
    return jsonify(read_satisfaction(number))


def read_satisfaction(number):
    services().call("tickets", "get_ticket", number, viewer())  # the 404 of a ticket the agent may not see
    return services().call("surveys", "ticket_satisfaction", number)


def answer_survey(token, rating, comment=None):
    """The portal's one-click rating and comment (the signed link is the credential)."""
    return services().call("surveys", "answer_csat", token, rating, comment, viewer()["correlation_id"])


def read_survey(token):
    return services().call("surveys", "survey_for_link", token)


def answer_recommendation(token, score, comment=None):
    """The portal's NPS page (the signed link is the credential)."""
    return services().call("surveys", "answer_nps", token, score, comment, viewer()["correlation_id"])


def read_recommendation(token):
    return services().call("surveys", "nps_for_link", token)
