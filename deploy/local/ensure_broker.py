"""Make sure a RabbitMQ answers on HELPDESK_AMQP_URI; start the local one if it is installed but stopped.

Used by ``make run`` and ``make test``; says exactly how to get a broker when there is none.
"""
import os
import shutil
import subprocess
import sys
import time
import warnings

warnings.simplefilter("ignore")

from kombu import Connection  # noqa: E402

URI = os.environ.get("HELPDESK_AMQP_URI") or "pyamqp://guest:guest@127.0.0.1:5672/"
HOW_TO = """No RabbitMQ answers on {uri}.
Install and start one, for example on Debian/Ubuntu:
    sudo apt-get install -y rabbitmq-server && sudo rabbitmq-server -detached
or point HELPDESK_AMQP_URI at a running broker."""


def reachable(timeout=2):
    try:
        with Connection(URI, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1)
        return True
    except Exception:
        return False


def main():
    if reachable():
        return 0
    local = "127.0.0.1" in URI or "localhost" in URI
    if local and shutil.which("rabbitmq-server"):
        print("starting the local RabbitMQ ...", flush=True)
        subprocess.run(["rabbitmq-server", "-detached"], check=False)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if reachable():
                print("RabbitMQ is up")
                return 0
            time.sleep(1)
    print(HOW_TO.format(uri=URI), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
