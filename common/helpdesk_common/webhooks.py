"""The one signature scheme of every webhook, inbound (phone, social) and outbound (social replies).

A sender signs ``<timestamp>.<raw body>`` with HMAC-SHA256 and the shared secret and sends::

    X-Helpdesk-Timestamp: 1767261600
    X-Helpdesk-Signature: sha256=<hex digest>

The receiver recomputes it over the exact bytes it received and refuses a timestamp more than five
minutes from its own clock (replay protection).
"""
import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Helpdesk-Signature"
TIMESTAMP_HEADER = "X-Helpdesk-Timestamp"
DELIVERY_HEADER = "X-Helpdesk-Delivery"
"""Outbound only: the delivery's id, the same on every retry, so a receiver can drop repeats."""
MAX_SKEW_SECONDS = 300


def sign(secret, timestamp, body):
    """The signature a sender puts in X-Helpdesk-Signature (also what integrators' tests use)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(secret, body, now=None):
    """The two signature headers for ``body`` (bytes), signed now."""
    timestamp = str(int(now if now is not None else time.time()))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)}
