"""The tickets service's dependency providers: its rules, read from config once at start-up."""
from nameko.extensions import DependencyProvider

from . import domain
from .sla import SlaPolicies
from .workflow import Workflow


class TicketRules(DependencyProvider):
    """The organisation's workflow and number format, read once from config at start-up."""

    def setup(self):
        config = self.container.config
        self.rules = domain.Rules(workflow=Workflow.load(config.get("WORKFLOW_FILE") or None),
                                  number_format=config.get("TICKET_NUMBER_FORMAT") or "HD-{seq:06d}",
                                  sla=SlaPolicies.load(config.get("SLA_FILE") or None),
                                  phone_region=(config.get("PHONE_REGION") or None),
                                  problem_solves_incidents=str(config.get("PROBLEM_SOLVES_INCIDENTS", True)).lower()
                                  not in ("false", "0", "no", "off"))

    def get_dependency(self, worker_ctx):
        return self.rules
