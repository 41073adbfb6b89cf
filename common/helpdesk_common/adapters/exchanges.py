"""The broker's side of the event catalogue: the exchanges each service's events travel on."""
from kombu import Exchange

from ..events import batch_exchange_name, exchange_name


def event_exchanges(source, auto_delete=False):
    """The kombu exchanges of ``source``'s events: ``(<source>.events, <source>.batches)``, topic, durable,
    persistent, as the relay publishes on them and handlers bind to them (``auto_delete``: the
    ``AUTO_DELETE_EVENT_EXCHANGES`` setting)."""
    return tuple(Exchange(name, type="topic", durable=True, delivery_mode=2, auto_delete=auto_delete)
                 for name in (exchange_name(source), batch_exchange_name(source)))
