"""The tickets service's nameko extensions: its rules read from config, and a timer configured likewise."""
from nameko.extensions import DependencyProvider
from nameko.timer import Timer

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
                                  phone_region=(config.get("PHONE_REGION") or None))

    def get_dependency(self, worker_ctx):
        return self.rules


class ConfigTimer(Timer):
    """A nameko timer whose interval (seconds) is read from the service's config at start-up."""

    def __init__(self, config_key, default, **kwargs):
        self.config_key, self.default = config_key, default
        super().__init__(interval=default, **kwargs)

    def setup(self):
        value = self.container.config.get(self.config_key)
        self.interval = float(value) if value not in (None, "") else self.default
        if self.interval <= 0:
            raise ValueError(f"{self.config_key} must be a positive number of seconds")


sla_timer = ConfigTimer.decorator
