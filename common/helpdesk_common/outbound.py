"""Outgoing HTTP to an address an operator configured (the social connector; integrators' webhooks later).

Such a request carries a signature, and its target is only as trustworthy as the configuration, so:

- no redirect is followed: a redirect would carry the signature headers to wherever it points;
- a target whose host resolves to a private, loopback, link-local or otherwise internal address is refused
  unless the setting allows it (a connector on the organisation's own network, a sidecar): a mistyped or
  hostile URL must not make the platform probe its own network;
- plain ``http://`` only to such an allowed internal target; anything on the internet is ``https://``;
- an answer is read up to a bound, so a connector cannot hold the sender with an endless body.

The host is checked when the request is sent, not only at start-up (DNS may change). A name that resolves
to a public address at the check and to an internal one at the connection (DNS rebinding) is not caught;
pin the target by IP or allow-list it at the network's edge where that matters.
"""
import ipaddress
import socket
import urllib.error
import urllib.parse
import urllib.request

MAX_ANSWER_BYTES = 64 * 1024


class OutboundRefused(ValueError):
    """The target is not one the platform may send to (scheme, internal address, redirect)."""


def _internal(address):
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
            or ip.is_unspecified)


def resolved_addresses(host):
    """Every address ``host`` resolves to (an IP literal: itself)."""
    try:
        return {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except socket.gaierror as error:
        raise OutboundRefused(f"{host} does not resolve: {error}") from None


def check_target(url, allow_internal=False, resolve=resolved_addresses):
    """Refuse ``url`` unless the platform may send to it; returns its parts."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundRefused(f"{url!r} is not an http(s) URL with a host")
    internal = sorted(address for address in resolve(parts.hostname) if _internal(address))
    if internal and not allow_internal:
        raise OutboundRefused(f"{parts.hostname} is an internal address ({', '.join(internal)}); sending there "
                              "needs the setting that allows internal targets")
    if parts.scheme == "http" and not internal:
        raise OutboundRefused(f"{url} would go over the internet in clear: use https://")
    return parts


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises HTTPError with the 3xx: a redirect is an answer, not followed


def post(url, body, headers, *, timeout, context=None, allow_internal=False, max_answer=MAX_ANSWER_BYTES):
    """POST ``body`` to ``url`` as :func:`check_target` allows; ``(status, the answer's first bytes)`` of a 2xx.

    Raises :class:`OutboundRefused`, or what ``urllib`` raises (``HTTPError`` for any other status, 3xx
    included; ``URLError``/``OSError`` when the target cannot be reached)."""
    check_target(url, allow_internal)
    opener = urllib.request.build_opener(_NoRedirect, urllib.request.HTTPSHandler(context=context))
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with opener.open(request, timeout=timeout) as answer:
        return answer.status, answer.read(max_answer)
