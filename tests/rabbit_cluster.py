"""A RabbitMQ cluster of its own, on loopback, for tests that stop a broker node under load.

Three nodes of Debian's ``rabbitmq-server`` (``hd1-<run>@localhost`` ...), each with its own AMQP and
distribution ports, data and log directories, configuration (no plugins: no management listener to clash
with the system broker's 15672) and a cookie the three share, all under one work directory. The system
RabbitMQ (``rabbit@localhost`` on 5672) is never touched; the nodes register with the epmd it runs.

The nodes run in the foreground of processes this harness owns (one process group each), so a node is
killed as a crash would kill it (SIGKILL: its client connections are reset, nothing is flushed) and the
cluster is torn down by process id.
"""
import os
import secrets
import signal
import socket
import subprocess
import time

RABBITMQ_BIN = "/usr/lib/rabbitmq/bin"  # the scripts themselves: /usr/sbin's wrappers switch to the rabbitmq user


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Node:
    def __init__(self, workdir, name, cookie_home):
        self.name = name
        self.port = free_port()
        self.dist_port = free_port()
        self.base = os.path.join(workdir, name.split("@")[0])
        self.cookie_home = cookie_home
        self.process = None
        os.makedirs(os.path.join(self.base, "log"), exist_ok=True)
        with open(os.path.join(self.base, "rabbitmq.conf"), "w") as conf:
            conf.write(f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
                       "loopback_users.guest = true\n"
                       # The test machine is small and loaded: no disk or memory alarm should stop publishers.
                       "disk_free_limit.absolute = 1MB\n"
                       "vm_memory_high_watermark.relative = 0.8\n")
        with open(os.path.join(self.base, "enabled_plugins"), "w") as plugins:
            plugins.write("[].\n")
        open(os.path.join(self.base, "rabbitmq-env.conf"), "w").close()  # not /etc/rabbitmq's (rabbit@localhost)

    @property
    def amqp_uri(self):
        return f"pyamqp://guest:guest@127.0.0.1:{self.port}//"

    def env(self):
        env = {key: value for key, value in os.environ.items() if not key.startswith(("RABBITMQ_", "ERL_"))}
        env.update({
            "HOME": self.cookie_home,  # $HOME/.erlang.cookie: the cookie the nodes and rabbitmqctl share
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": os.path.join(self.base, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(self.base, "log"),
            "RABBITMQ_CONFIG_FILE": os.path.join(self.base, "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(self.base, "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": os.path.join(self.base, "rabbitmq-env.conf"),
            "RABBITMQ_PID_FILE": os.path.join(self.base, "pid"),
            "RABBITMQ_LOGS": os.path.join(self.base, "log", "rabbit.log"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "RABBITMQ_CTL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        })
        return env

    def start(self):
        out = open(os.path.join(self.base, "log", "console.log"), "ab")
        self.process = subprocess.Popen([os.path.join(RABBITMQ_BIN, "rabbitmq-server")], env=self.env(),
                                        stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def ctl(self, *args, timeout=120):
        """``rabbitmqctl -n <this node> args...``; returns its output, raises with it on failure."""
        result = subprocess.run([os.path.join(RABBITMQ_BIN, "rabbitmqctl"), "-n", self.name, *args],
                                env=self.env(), capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {self.name}: {result.stdout}{result.stderr}")
        return result.stdout

    def await_startup(self, timeout=180):
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.process.returncode}); see {self.base}/log")
            try:
                self.ctl("await_startup", "--timeout", "30", timeout=60)
                return
            except (RuntimeError, subprocess.TimeoutExpired):
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)  # the node's VM is still booting: rabbitmqctl cannot reach it yet

    def kill(self):
        """Kill the node as a crash would (SIGKILL to its process group)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def restart(self, timeout=180, crash=True):
        """Stop the node and start it again on its own data and ports; returns when it serves again.
        ``crash``: killed (SIGKILL: nothing flushed, connections reset) rather than stopped as an operator
        would (SIGTERM: connections closed, queues written out)."""
        if crash:
            self.kill()
        elif self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(120)
            except subprocess.TimeoutExpired:
                self.kill()
        self.start()
        self.await_startup(timeout)

    def accepts_connections(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False


class ClusterBroker:
    """What :class:`stack.Stack` needs of its vhost (``Stack.vhost``), for a broker of its own: its default
    vhost, "/", made and removed with the broker itself."""

    def __init__(self, amqp_uri):
        self.amqp_uri = amqp_uri

    def create(self):
        return self

    def delete(self):
        pass


class RabbitCluster:
    """Three (``size``) clustered RabbitMQ nodes under ``workdir``; use as a context manager."""

    def __init__(self, workdir, size=3, prefix="hd"):
        """``prefix``: of the node names (``<prefix><index>-<run>@localhost``)."""
        self.workdir = str(workdir)
        run = secrets.token_hex(3)
        cookie_home = os.path.join(self.workdir, "home")
        os.makedirs(cookie_home, exist_ok=True)
        cookie = os.path.join(cookie_home, ".erlang.cookie")
        with open(cookie, "w") as stream:
            stream.write(secrets.token_hex(16).upper())
        os.chmod(cookie, 0o400)
        self.nodes = [Node(self.workdir, f"{prefix}{index}-{run}@localhost", cookie_home)
                      for index in range(1, size + 1)]

    @property
    def amqp_uri(self):
        """Every node, in order, as kombu's failover URI: a client connects to the first that answers."""
        return ";".join(node.amqp_uri for node in self.nodes)

    def start(self):
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.await_startup()
        first = self.nodes[0]
        for node in self.nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", first.name)
            node.ctl("start_app")
            node.await_startup()
        status = first.ctl("cluster_status", "--formatter", "json")
        for node in self.nodes:
            assert node.name in status, status
        return self

    def stop(self):
        for node in self.nodes:
            node.kill()

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()
