"""The routing service's nameko extensions: the organisation's routing settings, read from config."""
from nameko.extensions import DependencyProvider

from . import domain


def _flag(value, default):
    if value is None or value == "":
        return default
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class RoutingSettings(DependencyProvider):
    """The organisation's routing settings, read once from config at start-up."""

    def setup(self):
        config = self.container.config
        statuses = config.get("RELEASE_STATUSES") or "resolved,closed"
        if isinstance(statuses, str):
            statuses = [s.strip() for s in statuses.split(",") if s.strip()]
        self.settings = domain.Settings(
            default_team=config.get("DEFAULT_TEAM") or None,
            release_statuses=frozenset(statuses),
            escalate_on_sla_breach=_flag(config.get("ESCALATE_ON_SLA_BREACH"), True),
            escalate_after_reopens=int(config.get("ESCALATE_AFTER_REOPENS") or 0),
            escalate_on_urgent=_flag(config.get("ESCALATE_ON_URGENT"), True),
        )

    def get_dependency(self, worker_ctx):
        return self.settings
