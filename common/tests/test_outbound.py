"""Outgoing HTTP to configured targets (helpdesk_common.outbound) against real HTTP servers on loopback:
redirects never followed, internal targets refused unless allowed, http only to them, answers bounded."""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib.error

from helpdesk_common import outbound


class Handler(BaseHTTPRequestHandler):
    seen = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Handler.seen.append((self.path, body, self.headers.get("X-Signature")))
        if self.path == "/redirect":
            self.send_response(307)
            self.send_header("Location", "/elsewhere")
            self.end_headers()
            return
        answer = b"x" * 200_000 if self.path == "/huge" else b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Handler.seen.clear()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_a_loopback_target_is_refused_unless_allowed(server):
    with pytest.raises(outbound.OutboundRefused, match="internal address"):
        outbound.post(f"{server}/hook", b"{}", {}, timeout=5)
    assert Handler.seen == []  # nothing was sent
    status, answer = outbound.post(f"{server}/hook", b"{}", {"X-Signature": "s"}, timeout=5, allow_internal=True)
    assert (status, answer) == (200, b"ok") and Handler.seen == [("/hook", b"{}", "s")]


def test_a_redirect_is_an_answer_never_followed(server):
    with pytest.raises(urllib.error.HTTPError) as caught:
        outbound.post(f"{server}/redirect", b"{}", {"X-Signature": "s"}, timeout=5, allow_internal=True)
    assert caught.value.code == 307
    assert [path for path, _, _ in Handler.seen] == ["/redirect"]  # the signature went nowhere else


def test_an_answer_is_read_up_to_its_bound(server):
    status, answer = outbound.post(f"{server}/huge", b"{}", {}, timeout=5, allow_internal=True, max_answer=1000)
    assert status == 200 and len(answer) == 1000


@pytest.mark.parametrize("url, addresses, allowed, refused", [
    ("https://connector.example/hook", {"93.184.216.34"}, False, None),
    ("http://connector.example/hook", {"93.184.216.34"}, True, "in clear"),  # the internet: https only
    ("https://connector.example/hook", {"93.184.216.34", "10.0.0.5"}, False, "internal address"),  # any internal
    ("https://metadata.example/", {"169.254.169.254"}, False, "internal address"),  # link-local
    ("https://v6.example/", {"::1"}, False, "internal address"),
    ("http://sidecar.example/", {"10.1.2.3"}, True, None),  # allowed internal, http fine there
    ("ftp://x.example/", {"93.184.216.34"}, True, "not an http"),
])
def test_targets(url, addresses, allowed, refused):
    check = lambda: outbound.check_target(url, allowed, resolve=lambda host: addresses)  # noqa: E731
    if refused:
        with pytest.raises(outbound.OutboundRefused, match=refused):
            check()
    else:
        assert check().hostname
