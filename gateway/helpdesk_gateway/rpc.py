"""A pool of nameko RPC proxies shared by the gateway's request threads.

A proxy per request would declare and delete a reply queue per request; a proxy is not safe to share
between threads at once. So each request borrows one started proxy and gives it back.
"""
import logging
import queue
import threading
from contextlib import contextmanager

from amqp.exceptions import AMQPError
from kombu.exceptions import OperationalError
from nameko.exceptions import RemoteError, RpcTimeout, UnknownService
from nameko.standalone.rpc import ClusterRpcProxy

from helpdesk_common.adapters.queues import ConnectionReplyListener
from helpdesk_common.errors import HelpdeskError

log = logging.getLogger(__name__)

# A service's unexpected errors that mean "not now" rather than "never": its database or broker unreachable
# (SQLAlchemy's and kombu's OperationalError, a dropped connection). The soak (tests/soak.py) saw every call
# answered 500 for the seconds PostgreSQL restarted; a client must be told to retry, as for a service down.
TRANSIENT_REMOTE_ERRORS = {"OperationalError", "InterfaceError", "DisconnectionError"}


class ServiceUnavailable(HelpdeskError):
    """A service did not answer (down, overloaded, or the broker is unreachable)."""

    status = 503
    default_code = "service_unavailable"


class RpcPool:
    """Borrow a started ``ClusterRpcProxy`` per call; at most ``size`` exist at once."""

    def __init__(self, amqp_uri, size=64, timeout=10.0):
        self.config = {"AMQP_URI": amqp_uri}
        self.timeout = timeout
        self._idle = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)

    def _start(self):
        # Its reply queue exclusive to its connection: it goes with a broker node that dies, never stranded.
        cluster = ClusterRpcProxy(self.config, timeout=self.timeout, reply_listener_cls=ConnectionReplyListener)
        return cluster, cluster.start()

    @contextmanager
    def proxy(self):
        """A started proxy for the duration of the block; discarded if it failed, reused otherwise."""
        if not self._slots.acquire(timeout=self.timeout):
            raise ServiceUnavailable("The gateway is at its limit of concurrent service calls; retry shortly.")
        try:
            try:
                cluster, proxy = self._idle.get_nowait()
            except queue.Empty:
                cluster, proxy = self._start()
            healthy = False
            try:
                yield proxy
                healthy = True
            except (HelpdeskError, RemoteError):
                healthy = True  # the service answered with an error: the proxy itself is fine
                raise
            finally:
                if healthy:
                    self._idle.put((cluster, proxy))
                else:
                    self._discard(cluster)
        finally:
            self._slots.release()

    def call(self, service, method, *args, **kwargs):
        """Call ``service.method`` and return its result; transport failures become a 503."""
        with self._translated(service):
            with self.proxy() as proxy:
                return getattr(getattr(proxy, service), method)(*args, **kwargs)

    def gather(self, calls, return_errors=False):
        """The results of several calls ``(service, method, *args)``, sent at once on one proxy and awaited
        together: a page that needs five answers waits about as long as for the slowest, not for the sum.
        ``return_errors``: a failed call's place holds its error (the service's own, or the 503 ``call``
        would raise for a service that is down or late) instead of raising: for a page's optional parts."""
        with self._translated(", ".join(dict.fromkeys(service for service, *_ in calls))):
            with self.proxy() as proxy:
                replies = [getattr(getattr(proxy, service), method).call_async(*args)
                           for service, method, *args in calls]
                results, refused = [], None
                for (service, *_), reply in zip(calls, replies):  # every reply taken before an error is raised
                    try:
                        with self._translated(service):
                            results.append(reply.result())
                    except HelpdeskError as error:
                        if return_errors:
                            results.append(error)
                        else:
                            refused = refused or error
                if refused is not None:
                    raise refused
                return results

    @contextmanager
    def _translated(self, service):
        """Transport failures as a 503 the caller can act on (a service's own errors pass unchanged)."""
        try:
            yield
        except RpcTimeout:
            raise ServiceUnavailable(f"The {service} service did not answer within {self.timeout:g} s; retry shortly.",
                                     code="service_timeout") from None
        except RemoteError as error:
            if error.exc_type not in TRANSIENT_REMOTE_ERRORS:
                raise
            raise ServiceUnavailable(f"The {service} service cannot reach its database or broker right now "
                                     f"({error.exc_type}); retry shortly.", code="service_unavailable") from None
        except UnknownService:
            raise ServiceUnavailable(f"The {service} service is not running; retry shortly.",
                                     code="service_unavailable") from None
        except (OperationalError, ConnectionError, OSError, AMQPError) as error:  # AMQPError: a node failing over
            raise ServiceUnavailable(f"The message broker cannot be reached ({error.__class__.__name__}); "
                                     "retry shortly.", code="broker_unavailable") from None

    def _discard(self, cluster):
        try:
            cluster.stop()
        except Exception:  # a broken connection may fail to close; it is dropped either way
            log.debug("discarding a broken RPC proxy", exc_info=True)

    def close(self):
        while True:
            try:
                cluster, _proxy = self._idle.get_nowait()
            except queue.Empty:
                return
            self._discard(cluster)
