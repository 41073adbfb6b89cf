"""What every helpdesk service shares, written once.

- ``events``: the event envelope and the catalogue of event types (the contract integrators read).
- ``outbox``: reliable publishing (state change and event in one transaction, relayed with confirms).
- ``consumer``: idempotent, retrying event handlers with a parking queue for operators.
- ``database``: engines and the nameko dependency that gives each worker a session.
- ``config``, ``errors``, ``metrics``: one way to read settings, report errors and expose metrics.
- ``contracts``: the validated shapes of commands sent to services (used by services and the gateway).
"""
