"""The real servers the intake tests talk to: Dovecot (IMAP) and aiosmtpd (SMTP), on free loopback ports.

Dovecot runs unprivileged from a generated config: when the tests run as root (CI) it is started as the
``dovecot`` system user the Debian package creates; otherwise as the current user. Its passdb accepts
any user name with the password ``secret`` (a static passdb), so each test takes a mailbox of its own
(``Maildir`` under ``home/<user>``) which the test fills by writing files into ``Maildir/new``, as a
local delivery agent would.

The SMTP server is aiosmtpd in a plain Python child process (no eventlet: aiosmtpd runs on asyncio),
which writes every message it receives, with its envelope, into a folder the tests read.
"""
import email
import email.policy
import glob
import imaplib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager

from helpdesk_common import testing

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
PASSWORD = "secret"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate, timeout=15.0, interval=0.02, what="condition"):
    """``helpdesk_common.testing.wait_for`` under the name and arguments these tests use."""
    return testing.wait_for(predicate, timeout=timeout, message=what, interval=interval)


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Certificates:
    """A private CA and a server certificate for 127.0.0.1/localhost signed by it, made with ``openssl``
    (PEM files in ``folder``): what a company with its own CA gives its mail servers."""

    def __init__(self, folder):
        self.folder = str(folder)
        os.makedirs(self.folder, exist_ok=True)
        self.ca = os.path.join(self.folder, "ca.pem")
        self.cert = os.path.join(self.folder, "server.pem")
        self.key = os.path.join(self.folder, "server.key")
        ca_key = os.path.join(self.folder, "ca.key")
        request = os.path.join(self.folder, "server.csr")
        extensions = os.path.join(self.folder, "server.ext")
        with open(extensions, "w") as stream:
            stream.write("subjectAltName = IP:127.0.0.1, DNS:localhost\nextendedKeyUsage = serverAuth\n")

        def openssl(*args):
            subprocess.run(["openssl", *args], check=True, capture_output=True)

        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", self.ca, "-days", "2",
                "-subj", "/CN=Helpdesk Test CA")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key, "-out", request,
                "-subj", "/CN=127.0.0.1")
        openssl("x509", "-req", "-in", request, "-CA", self.ca, "-CAkey", ca_key, "-CAcreateserial",
                "-out", self.cert, "-days", "2", "-extfile", extensions)
        for path in (self.cert, self.key, self.ca):
            os.chmod(path, 0o644)  # Dovecot reads them as its unprivileged user


class Dovecot:
    """Dovecot on loopback; with ``certificates`` also IMAPS on ``tls_port`` and STARTTLS on ``port``."""

    def __init__(self, root, certificates=None):
        self.root = str(root)
        self.port = free_port()
        self.certificates = certificates
        self.tls_port = free_port() if certificates else 0
        if os.getuid() == 0:
            account = pwd.getpwnam("dovecot")
        else:
            account = pwd.getpwuid(os.getuid())
        self.user, self.uid, self.gid = account.pw_name, account.pw_uid, account.pw_gid
        self.config = os.path.join(self.root, "dovecot.conf")
        self.process = None

    def _write_config(self):
        group = self.user if os.getuid() == 0 else f"#{self.gid}"
        for sub in ("run", "state", "home"):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)
        with open(self.config, "w") as stream:
            stream.write(f"""
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{self._ssl()}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {self.user}
default_internal_group = {self.user if os.getuid() == 0 else pwd.getpwuid(os.getuid()).pw_name}
default_login_user = {self.user}
first_valid_uid = 1
first_valid_gid = 1
passdb {{
  driver = static
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = uid={self.uid} gid={self.gid} home={self.root}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port}
  }}
}}
service anvil {{
  chroot =
}}
""")
        del group

    def _ssl(self):
        if not self.certificates:
            return "ssl = no"
        return (f"ssl = yes\nssl_cert = <{self.certificates.cert}\nssl_key = <{self.certificates.key}\n"
                "ssl_min_protocol = TLSv1.2")

    def start(self):
        self._write_config()
        argv = [DOVECOT, "-F", "-c", self.config]
        if os.getuid() == 0:
            for path, _dirs, files in os.walk(self.root):
                os.chown(path, self.uid, self.gid)
                for name in files:
                    os.chown(os.path.join(path, name), self.uid, self.gid)
            argv = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups"] + argv
        self.output = open(os.path.join(self.root, "dovecot.out"), "wb")
        self.process = subprocess.Popen(argv, stdout=self.output, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        wait_for(lambda: port_open(self.port) or self.process.poll() is not None, timeout=20, what="dovecot")
        if self.process.poll() is not None:
            raise RuntimeError(f"dovecot did not start:\n{self.log()}")
        return self

    def log(self):
        try:
            with open(os.path.join(self.root, "dovecot.out"), errors="replace") as stream:
                started = stream.read()[-2000:]
        except OSError:
            started = ""
        try:
            with open(os.path.join(self.root, "dovecot.log"), errors="replace") as stream:
                return started + stream.read()[-5000:]
        except OSError:
            return started or "(no log)"

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def mailbox(self, user=None):
        return Mailbox(self, user or f"u{uuid.uuid4().hex[:10]}")


@contextmanager
def running_dovecot(prefix, server_class=None, tls=False):
    """A started Dovecot (``server_class``, default :class:`Dovecot`) in a fresh folder, stopped and removed
    afterwards; with ``tls``, certificates of a private CA for IMAPS and STARTTLS. The folder is not under
    pytest's temporary folder: as root, that is a private folder Dovecot's user cannot enter."""
    root = tempfile.mkdtemp(prefix=prefix)
    # the certificates inside root: it is chowned to Dovecot's user
    certificates = Certificates(os.path.join(root, "certs")) if tls else None
    server = (server_class or Dovecot)(root, certificates=certificates).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


class Mailbox:
    """One user's Maildir on the Dovecot server."""

    def __init__(self, server, user):
        self.server = server
        self.user = user
        self.maildir = os.path.join(server.root, "home", user, "Maildir")
        for sub in ("", "tmp", "new", "cur"):
            os.makedirs(os.path.join(self.maildir, sub), exist_ok=True)
        self._chown_tree(os.path.join(server.root, "home", user))

    def _chown_tree(self, top):
        if os.getuid() != 0:
            return
        for path, _dirs, files in os.walk(top):
            os.chown(path, self.server.uid, self.server.gid)
            for name in files:
                os.chown(os.path.join(path, name), self.server.uid, self.server.gid)

    def url(self, **options):
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"imap://{self.user}:{PASSWORD}@127.0.0.1:{self.server.port}/INBOX" + (f"?{query}" if query else "")

    def tls_url(self, **options):
        """``imaps://`` on the server's TLS port (the server must have certificates)."""
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return (f"imaps://{self.user}:{PASSWORD}@127.0.0.1:{self.server.tls_port}/INBOX"
                + (f"?{query}" if query else ""))

    def deliver(self, raw):
        """Drop ``raw`` into Maildir/new, as a delivery agent does (written in tmp/, then renamed)."""
        if isinstance(raw, str):
            raw = raw.encode()
        name = f"{time.time():.6f}.{uuid.uuid4().hex}.test"
        temporary = os.path.join(self.maildir, "tmp", name)
        with open(temporary, "wb") as stream:
            stream.write(raw)
        if os.getuid() == 0:
            os.chown(temporary, self.server.uid, self.server.gid)
        os.rename(temporary, os.path.join(self.maildir, "new", name))

    def imap(self):
        connection = imaplib.IMAP4("127.0.0.1", self.server.port)
        connection.login(self.user, PASSWORD)
        connection.select("INBOX")
        return connection

    def counts(self):
        """(messages, unseen) in INBOX, as the server sees them."""
        connection = self.imap()
        try:
            total = len(connection.uid("SEARCH", None, "ALL")[1][0].split())
            unseen = len(connection.uid("SEARCH", None, "UNSEEN")[1][0].split())
            return total, unseen
        finally:
            connection.logout()


SINK_SCRIPT = r'''
import json, os, sys, time, uuid
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

folder, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
mode, cert, key = (sys.argv[5:8] + [None, None, None])[:3] if len(sys.argv) > 5 else ("plain", None, None)
context = None
if mode in ("starttls", "tls"):
    import ssl
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

class Keep:
    async def handle_DATA(self, server, session, envelope):
        name = f"{time.time():.6f}-{uuid.uuid4().hex}"
        with open(os.path.join(folder, name + ".eml"), "wb") as stream:
            stream.write(envelope.original_content or envelope.content)
        meta = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                "login": session.auth_data.decode(errors="replace") if session.authenticated else None,
                "tls": session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None}
        tmp = os.path.join(folder, name + ".tmp")
        with open(tmp, "w") as stream:
            json.dump(meta, stream)
        os.rename(tmp, os.path.join(folder, name + ".json"))
        return "250 OK"

def authenticate(server, session, envelope, mechanism, auth_data):
    if auth_data.login.decode() == user and auth_data.password.decode() == password:
        return AuthResult(success=True, auth_data=auth_data.login)
    return AuthResult(success=False, handled=False)

if mode == "starttls":  # AUTH only after STARTTLS, as a real submission server would insist
    controller = Controller(Keep(), hostname="127.0.0.1", port=port, authenticator=authenticate,
                            auth_require_tls=True, auth_required=True, tls_context=context, require_starttls=True)
elif mode == "tls":  # implicit TLS from the first byte (port 465 style)
    controller = Controller(Keep(), hostname="127.0.0.1", port=port, authenticator=authenticate,
                            auth_require_tls=False, auth_required=True, ssl_context=context)
else:
    controller = Controller(Keep(), hostname="127.0.0.1", port=port, authenticator=authenticate,
                            auth_require_tls=False, auth_required=True)
controller.start()
print("ready", flush=True)
try:
    sys.stdin.read()
finally:
    controller.stop()
'''


class SmtpSink:
    """aiosmtpd receiving on loopback (AUTH required: user ``helpdesk``, password ``secret``)."""

    user = "helpdesk"
    password = PASSWORD

    def __init__(self, root, mode="plain", certificates=None):
        """``mode``: ``plain``, ``starttls`` (AUTH only after STARTTLS) or ``tls`` (implicit TLS)."""
        self.folder = os.path.join(str(root), "smtp")
        os.makedirs(self.folder, exist_ok=True)
        self.port = free_port()
        self.process = None
        self.mode = mode
        self.certificates = certificates

    @property
    def url(self):
        scheme = "smtps" if self.mode == "tls" else "smtp"
        query = "?starttls=true" if self.mode == "starttls" else ""
        return f"{scheme}://{self.user}:{self.password}@127.0.0.1:{self.port}{query}"

    def start(self):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        tls = [self.mode, self.certificates.cert, self.certificates.key] if self.certificates else []
        self.process = subprocess.Popen([sys.executable, "-c", SINK_SCRIPT, self.folder, str(self.port), self.user,
                                         self.password, *tls], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                        start_new_session=True)
        assert self.process.stdout.readline().strip() == b"ready", "the SMTP sink did not start"
        wait_for(lambda: port_open(self.port), what="the SMTP sink")
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def messages(self, to=None):
        """Every message received so far (oldest first), optionally only those to ``to``."""
        found = []
        for meta_path in sorted(glob.glob(os.path.join(self.folder, "*.json"))):
            with open(meta_path) as stream:
                meta = json.load(stream)
            if to and to.lower() not in [r.lower() for r in meta["rcpt_tos"]]:
                continue
            with open(meta_path[:-5] + ".eml", "rb") as stream:
                message = email.message_from_bytes(stream.read(), policy=email.policy.default)
            message.envelope = meta
            found.append(message)
        return found

    def wait_for(self, to, count=1, timeout=15.0):
        return wait_for(lambda: len(self.messages(to)) >= count and self.messages(to), timeout=timeout,
                        what=f"{count} mail(s) to {to}")
