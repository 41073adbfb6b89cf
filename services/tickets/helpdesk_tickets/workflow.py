"""The ticket workflow as an explicit state machine, loaded from YAML so organisations can adapt it."""
import os
from dataclasses import dataclass

import yaml

from .exceptions import WorkflowError, transition_not_allowed, unknown_status

CATEGORIES = ("new", "open", "pending", "resolved", "closed")
BUILT_IN = os.path.join(os.path.dirname(__file__), "workflow.yaml")


@dataclass(frozen=True)
class Workflow:
    """Statuses (each in a category), the transitions allowed between them, and the initial status."""

    initial: str
    categories: dict
    transitions: dict

    @classmethod
    def from_dict(cls, spec):
        """Build and check a workflow; a mistake in the file stops the service at start-up."""
        try:
            statuses = spec["statuses"]
            initial = spec["initial"]
            categories = {name: item["category"] for name, item in statuses.items()}
            # In the file's order, not a set: where several targets fit (a customer's reply takes a
            # pending ticket to the first "open" one), the order written in the file decides.
            transitions = {name: tuple(dict.fromkeys(item.get("next") or ())) for name, item in statuses.items()}
        except (KeyError, TypeError, AttributeError) as error:
            raise WorkflowError(f"workflow needs 'initial' and 'statuses' with a category each: {error}")
        if initial not in statuses:
            raise WorkflowError(f"initial status {initial!r} is not among the statuses")
        for name, category in categories.items():
            if category not in CATEGORIES:
                raise WorkflowError(f"status {name!r} has unknown category {category!r}")
        for name, targets in transitions.items():
            unknown = set(targets) - set(statuses)
            if unknown:
                raise WorkflowError(f"status {name!r} leads to unknown statuses {sorted(unknown)}")
        return cls(initial=initial, categories=categories, transitions=transitions)

    @classmethod
    def load(cls, path=None):
        """The workflow in ``path``, or the built-in one."""
        with open(path or BUILT_IN) as stream:
            return cls.from_dict(yaml.safe_load(stream))

    @property
    def statuses(self):
        return list(self.categories)

    def check(self, current, target):
        """Raise a clear error unless a ticket may go from ``current`` to ``target``."""
        if target not in self.categories:
            raise unknown_status(target, self.statuses)
        if target not in self.transitions.get(current, ()):
            raise transition_not_allowed(current, target, self.transitions.get(current, ()))

    def category(self, status):
        return self.categories[status]

    def is_reopening(self, current, target):
        return self.category(current) in ("resolved", "closed") and self.category(target) not in (
            "resolved", "closed")

    def describe(self):
        """The workflow as plain data, for the API and the UI."""
        return {"initial": self.initial,
                "statuses": [{"name": name, "category": self.categories[name],
                              "next": sorted(self.transitions[name])} for name in self.categories]}
