"""The nameko side of the shared library: the outbox relay, the database provider, reliable consumers and
parking, group commit, entrypoint metrics, config loading and migrations.

The core beside it (events, contracts, errors, outbox staging, first-delivery records, clocks, business
hours) imports none of nameko, eventlet or kombu, so business rules that use it can be read and tested
without a broker; ``import-linter`` contracts (``.importlinter`` at the top of the repository) keep it so.

Importing this package registers every :class:`~helpdesk_common.errors.HelpdeskError` class with nameko,
so an RPC caller gets the same class back, not a bare ``RemoteError``.
"""
from nameko.exceptions import deserialize_to_instance

from ..errors import on_remote_error_defined

on_remote_error_defined(deserialize_to_instance)
