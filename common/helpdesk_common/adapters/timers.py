"""A nameko timer whose interval comes from the service's config (tests and operators shorten or lengthen it)."""
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
