"""Intake's rules, as plain code (no nameko, no eventlet): reading mail (``mime``, ``quoting``, ``htmltext``,
``authresults``, ``parse``), turning inbound messages into tickets (``ingest``), the web form and webhooks
(``channels``), live chat (``chat``) and the mails' templates (``templates``)."""
