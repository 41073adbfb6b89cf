"""Applied before anything else is imported: nameko needs eventlet's monkey-patch, first."""
import eventlet

eventlet.monkey_patch()  # noqa: E402 - must precede every other import

import os  # noqa: E402

os.environ.setdefault("PYTHONWARNINGS", "ignore")  # silence eventlet's deprecation banner in children
# Classic queues on the test broker's single node (helpdesk_common.adapters.queues says why); the quorum tests
# (common/tests/test_queues.py, tests/test_broker_cluster.py) ask for quorum queues themselves.
os.environ.setdefault("HELPDESK_QUEUE_TYPE", "classic")


# The layers the README names, as markers, so that `make unit`, `make interface` and `make e2e` select them:
# a test is end to end when its module says so (pytestmark = pytest.mark.e2e); else it is an interface test
# when it meets a real server through one of these fixtures (RabbitMQ, PostgreSQL, Dovecot, an SMTP sink, the
# search backends); else it is a unit test, which needs nothing running.
REAL_SERVER_FIXTURES = frozenset({
    "rabbit_config", "container_factory", "runner_factory", "dead_amqp_uri", "make_pool", "tap",
    "postgres_database", "postgres_url", "pg_url", "pg_sessions",
    "dovecot", "dovecot_without_idle", "tls_dovecot", "mailbox", "smtp_sink", "tls_sink",
    "es_url", "es_emulator_url", "tickets_service", "intake_service"})


def pytest_configure(config):
    config.addinivalue_line("markers", "unit: needs nothing running (no broker, no database server)")
    config.addinivalue_line("markers", "interface: one service or component against real servers")
    config.addinivalue_line("markers", "other_half: end to end, but `make test` runs it in the unit and interface half "
                            "(tests/run_in_two.sh), which is shorter without it")


def pytest_collection_modifyitems(items):
    for item in items:
        if item.get_closest_marker("e2e") is None:
            real = (item.get_closest_marker("interface") or item.get_closest_marker("postgres")
                    or REAL_SERVER_FIXTURES & set(item.fixturenames))
            item.add_marker("interface" if real else "unit")
