"""Fixtures of the kb-search tests: a migrated SQLite database, the Elasticsearch emulator, both backends.

The Elasticsearch tests run against ``noida-db`` (pinned in constraints.txt), an Elasticsearch 8 REST API
emulator started here on a free loopback port and stopped at the end. Production runs a real
Elasticsearch; where the emulator differs from it, the test says so and is marked ``es_emulator_gap``.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from importlib.resources import files

import pytest
import requests

from kb_search.migrate import upgrade

BACKENDS = ["embedded", "elasticsearch"]


def pytest_configure(config):
    config.addinivalue_line("markers", "es_emulator_gap: real Elasticsearch does this; the emulator does not")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout=30.0, interval=0.02, message="condition"):
    """Poll ``predicate`` until it returns something truthy (returned), or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def es_url():
    """An Elasticsearch 8 REST API (the noida-db emulator) on a free loopback port, for this session."""
    binary = files("noida_db").joinpath("noida-db")
    os.chmod(str(binary), 0o755)
    data_dir = tempfile.mkdtemp(prefix="kb-noida-")
    port = free_port()
    log = open(os.path.join(data_dir, "noida.log"), "wb")
    process = subprocess.Popen(
        [str(binary), "start", "--data-dir", data_dir, "--host", "127.0.0.1", "--only", "elasticsearch",
         "--elasticsearch-port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def answers():
        if process.poll() is not None:
            raise AssertionError(f"noida-db exited with {process.returncode}; see {log.name}")
        try:
            return requests.get(url, timeout=0.5).ok
        except requests.ConnectionError:
            return False

    try:
        wait_for(answers, timeout=30, message="the Elasticsearch emulator to answer")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(data_dir, ignore_errors=True)


def make_test_backend(kind, request, tmp_path):
    if kind == "embedded":
        from kb_search.backends.embedded import EmbeddedBackend

        backend = EmbeddedBackend(str(tmp_path / "index"))
    else:
        from kb_search.backends.elastic import ElasticsearchBackend

        es_url = request.getfixturevalue("es_url")
        backend = ElasticsearchBackend(es_url, prefix=f"kbt{uuid.uuid4().hex[:8]}", refresh="wait_for")
    backend.ensure_ready()
    return backend


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    backend = make_test_backend(request.param, request, tmp_path)
    yield backend
    if request.param == "elasticsearch":
        backend.drop_all()
    backend.close()


@pytest.fixture
def db_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'kb.db'}"
    upgrade(url)
    return url


@pytest.fixture
def sessions(db_url):
    from sqlalchemy.orm import sessionmaker

    from helpdesk_common.database import engine_for

    return sessionmaker(engine_for(db_url), expire_on_commit=False)


@pytest.fixture(name="wait_for")
def wait_for_fixture():
    return wait_for
