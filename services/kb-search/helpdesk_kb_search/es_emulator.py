"""Start and stop the ``noida-db`` Elasticsearch 8 emulator, for tests and benchmarks (never production).

No real Elasticsearch installs from the package registries our machines reach, so the tests (the
service's own and the end-to-end ones) and the benchmarks run the Elasticsearch backend against
``noida-db`` (pinned in constraints.txt, the ``test`` extra of this package) on a free loopback port.
Production runs the official Elasticsearch image: nothing in the backend depends on this module.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time
from importlib.resources import files

import requests


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ElasticsearchEmulator:
    """One ``noida-db`` process serving the Elasticsearch REST API at :attr:`url`; a context manager."""

    def __init__(self, start_timeout=30.0):
        self.start_timeout = start_timeout
        self.process = None
        self.url = None
        self.data_dir = None
        self._log = None

    @property
    def log_path(self):
        return os.path.join(self.data_dir, "noida.log")

    def start(self):
        binary = files("noida_db").joinpath("noida-db")  # a binary shipped inside the wheel
        os.chmod(str(binary), 0o755)
        self.data_dir = tempfile.mkdtemp(prefix="kb-noida-")
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [str(binary), "start", "--data-dir", self.data_dir, "--host", "127.0.0.1", "--only",
             "elasticsearch", "--elasticsearch-port", str(port)], stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"noida-db exited with {self.process.returncode}")
            try:
                if requests.get(self.url, timeout=0.5).ok:
                    return self
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"noida-db did not answer within {self.start_timeout}s")
            time.sleep(0.05)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
