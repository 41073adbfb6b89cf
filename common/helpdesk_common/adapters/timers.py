"""A nameko timer whose interval comes from the service's config (the tickets' SLA check, analytics' surge and summary
timers, the surveys' NPS sweep): one way for every service to have a configurable periodic entrypoint."""
from nameko.timer import Timer


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


config_timer = ConfigTimer.decorator
