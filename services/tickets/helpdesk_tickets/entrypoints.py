"""The tickets service's own entrypoint: a timer whose interval comes from config (the SLA check)."""
from helpdesk_common.adapters.timers import ConfigTimer

sla_timer = ConfigTimer.decorator
