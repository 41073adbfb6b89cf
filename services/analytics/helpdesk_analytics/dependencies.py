"""The analytics service's nameko extensions: its settings (status categories, calendars), read at start-up."""
from nameko.extensions import DependencyProvider

from . import settings


class AnalyticsSettings(DependencyProvider):
    def setup(self):
        config = self.container.config
        self.settings = settings.load(config.get("SLA_FILE") or None, config.get("WORKFLOW_FILE") or None)

    def get_dependency(self, worker_ctx):
        return self.settings
