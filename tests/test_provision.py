"""deploy/local/provision.sh, which `make run`, `make test` and `.ci/run` use, on this machine as it is.

The component stopped here is RabbitMQ's management plugin: the script must bring it back (as root, or
with sudo without a password, as on CI), or, when it may not, stop with the one command a person must
run. A second run changes nothing."""
import os
import shutil
import socket
import subprocess

import pytest

from helpdesk_common.testing import wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "deploy", "local", "provision.sh")
pytestmark = pytest.mark.interface  # it stops and restarts a real RabbitMQ plugin


def port_open(port):
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def provision(need):
    return subprocess.run([SCRIPT, need], capture_output=True, text=True, timeout=600)


def may_administer():
    return os.geteuid() == 0 or subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0


def test_a_stopped_component_is_started_and_a_second_run_changes_nothing():
    assert shutil.which("rabbitmq-plugins"), "RabbitMQ is part of what the tests need"
    disabled = subprocess.run((["sudo", "-n"] if os.geteuid() else []) +
                              ["rabbitmq-plugins", "disable", "--quiet", "rabbitmq_management"],
                              capture_output=True, text=True)
    if disabled.returncode != 0:  # not allowed to stop it: the script must say what to run instead
        assert not may_administer()
        result = provision("test")
        assert result.returncode == 0 or "to go on, run:" in result.stderr
        return
    wait_for(lambda: not port_open(15672), timeout=30, message="the management plugin to stop")
    try:
        first = provision("test")
    finally:
        if not port_open(15672):  # leave the machine as the other tests need it, whatever happened
            subprocess.run((["sudo", "-n"] if os.geteuid() else []) +
                           ["rabbitmq-plugins", "enable", "--quiet", "rabbitmq_management"], capture_output=True)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "rabbitmq-management    enabled" in first.stdout, first.stdout
    assert port_open(15672)

    second = provision("test")
    assert second.returncode == 0, second.stdout + second.stderr
    lines = second.stdout.splitlines()
    assert lines and all(line.split()[2] in ("found", "running", "answering") for line in lines), second.stdout  # nothing done
    for component in ("python3.11", "rabbitmq", "rabbitmq-management", "rabbitmq-vhosts", "postgresql", "dovecot",
                      "chromium", "promtool"):
        assert any(line.split()[1] == component for line in lines), (component, second.stdout)


def test_make_run_needs_only_python_and_the_broker():
    result = provision("run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split()[1] for line in result.stdout.splitlines()] == ["python3.11", "rabbitmq"]
