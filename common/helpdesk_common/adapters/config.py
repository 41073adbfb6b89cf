"""One way to read configuration: nameko-style YAML with ``${ENV_VAR:default}`` substitution.

Services are started by ``nameko run --config config.yaml``, which substitutes the same way; tools
(migrations, the gateway, tests) call :func:`load_config` on the same file so every process agrees.
"""
import os

import yaml
from nameko.cli.main import setup_yaml_parser

DEFAULT_AMQP_URI = "pyamqp://guest:guest@127.0.0.1:5672/"


def load_config(path):
    """Read a nameko config file, substituting environment variables as ``nameko run`` does."""
    setup_yaml_parser()
    with open(path) as stream:
        return yaml.safe_load(stream) or {}


def env(name, default=None):
    """An environment setting; an empty value counts as unset."""
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def amqp_uri():
    """The broker every process talks to."""
    return env("HELPDESK_AMQP_URI", DEFAULT_AMQP_URI)
