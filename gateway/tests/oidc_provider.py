"""A real OpenID provider on loopback for the tests: ``oidc-provider-mock`` (a pinned test dependency) in
a child process. Its authorization form takes a subject; ``user(sub, claims)`` sets what the ID token
says about that subject (email, name, email_verified)."""
import os
import socket
import subprocess
import sys
from urllib.parse import quote

import requests

from helpdesk_common.testing import wait_for


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class OidcProvider:
    client_id, client_secret = "helpdesk", "helpdesk-secret"

    def __init__(self):
        self.port = _free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self):
        self.process = subprocess.Popen([sys.executable, "-m", "oidc_provider_mock", "--port", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        env={**os.environ, "PYTHONWARNINGS": "ignore"})
        wait_for(self._up, timeout=30, message=f"the OpenID provider at {self.issuer}")
        return self

    def _up(self):
        try:
            return requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def user(self, sub, **claims):
        requests.put(f"{self.issuer}/users/{quote(sub)}", json=claims, timeout=5).raise_for_status()

    def env(self):
        return {"HELPDESK_OIDC_ISSUER": self.issuer, "HELPDESK_OIDC_CLIENT_ID": self.client_id,
                "HELPDESK_OIDC_CLIENT_SECRET": self.client_secret, "HELPDESK_OIDC_NAME": "Example SSO"}

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
