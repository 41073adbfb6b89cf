"""The tickets service's own entrypoint: a timer whose interval comes from config (the SLA check)."""
from helpdesk_common.adapters.timer import ConfigTimer, config_timer  # noqa: F401  (ConfigTimer: the tests')

sla_timer = config_timer
