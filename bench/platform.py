"""The whole platform against its Python peer: tickets created through the REST API, same load generator.

Starts every process as ``make run`` does (tickets, intake, routing, kb_search, surveys, analytics and the
gateway with its default two workers; SQLite; a throwaway RabbitMQ vhost), or measures a running platform
(``--url`` and ``--token``). In the same run it installs django-helpdesk (pinned below) into a throwaway
virtualenv from PyPI, on SQLite, served by gunicorn with 4 sync workers, and drives its REST API
(``POST /api/tickets/`` with a DRF token) with the same generator — ``wrk`` (Debian's package), closed
loop, one connection per client — and the same ticket text. Prints both, and the ratio, per client count;
the peer's best rate over every client count measured is its figure for the ratio at 16 clients.

    .venv/bin/python bench/platform.py [--clients 1,16] [--peer-clients 1,4,8,16] [--seconds 20]

The peer sends its mail with Django's dummy backend (its best case: this platform sends its
acknowledgements asynchronously, through its outbox). Memory is each process's resident set at the end.
"""
import os.path
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

if __name__ == "platform":
    # This file has the standard library's module name, as the issue names it, and every script in bench/ has
    # this folder first on its path: imported by one of them (uuid imports ``platform``), become the standard
    # module. The benchmark itself is whole_platform.py.
    import importlib.util
    import sysconfig

    _spec = importlib.util.spec_from_file_location("platform", os.path.join(sysconfig.get_path("stdlib"),
                                                                            "platform.py"))
    _standard = importlib.util.module_from_spec(_spec)
    sys.modules["platform"] = _standard
    _spec.loader.exec_module(_standard)
elif __name__ == "__main__":
    import runpy

    sys.path[:] = [path for path in sys.path if os.path.abspath(path or ".") != HERE]
    runpy.run_path(os.path.join(HERE, "whole_platform.py"), run_name="__main__")
