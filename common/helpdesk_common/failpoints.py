"""Crash points for tests that kill a process at the worst moment.

Set ``HELPDESK_FAILPOINT=<name>`` and the process dies abruptly (``os._exit``, no clean-up, as with
SIGKILL) when it reaches :func:`failpoint` with that name. Unset, it costs one dictionary lookup.
"""
import os

EXIT_CODE = 86


def failpoint(name):
    """Die here if the environment asks for it."""
    if os.environ.get("HELPDESK_FAILPOINT") == name:
        os._exit(EXIT_CODE)
