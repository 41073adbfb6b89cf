"""What analytics knows of the organisation: status categories and the business calendar of each SLA
policy. Plain data, read from files in the tickets service's shapes (``calendars.yaml`` holds the defaults)."""
import os
from dataclasses import dataclass, field

import yaml

from helpdesk_common.business_hours import Calendar

DEFAULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "calendars.yaml")
SOLVED = ("resolved", "closed")


@dataclass(frozen=True)
class Settings:
    statuses: dict = field(default_factory=dict)  # status -> category
    calendar: Calendar = Calendar()  # of tickets without a policy, or whose policy names none
    policy_calendars: dict = field(default_factory=dict)  # policy name -> Calendar

    def category(self, status):
        """A status's category; an unknown status is taken as open work (it cannot be new, pending or done)."""
        return self.statuses.get(status, "open")

    def calendar_of(self, policy):
        return self.policy_calendars.get(policy, self.calendar)


def load(sla_file=None, workflow_file=None):
    """Settings from the defaults, overridden by the tickets service's SLA and workflow files if given."""
    with open(DEFAULTS) as stream:
        data = yaml.safe_load(stream)
    statuses = dict(data["statuses"])
    if workflow_file:
        with open(workflow_file) as stream:
            workflow = yaml.safe_load(stream)
        statuses = {name: item["category"] for name, item in workflow["statuses"].items()}
    if sla_file:
        with open(sla_file) as stream:
            sla = yaml.safe_load(stream) or {}
        data = {"calendar": sla.get("calendar") or data["calendar"], "calendars": sla.get("calendars") or {},
                "policies": sla.get("policies") or []}
    return from_dict(statuses, data)


def from_dict(statuses, data):
    default = Calendar.from_dict(data["calendar"])
    named = {name: Calendar.from_dict(value) for name, value in (data.get("calendars") or {}).items()}
    policies = {policy["name"]: named[policy["calendar"]] for policy in data.get("policies") or ()
                if policy.get("calendar") in named}
    return Settings(statuses=statuses, calendar=default, policy_calendars=policies)
