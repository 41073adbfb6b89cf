"""Is a mail's From address vouched for? Read from the receiving server's ``Authentication-Results``.

Plain functions, no I/O. Anyone can write any ``From``; only the receiving server can tell whether the
sending domain vouched for it (DMARC, or DKIM/SPF for that domain). It writes its verdict into an
``Authentication-Results`` header (RFC 8601) *on top of* the message, so:

* only the topmost header is trusted, and of those with our server's ``authserv-id``
  (``HELPDESK_MAIL_AUTHSERV_ID``) only the topmost one: headers further down came with the message and
  may be the sender's own inventions (the receiving server should also strip any with its own id);
* the From domain passes when ``dmarc=pass``, or ``dkim=pass`` with ``header.d`` aligned with it, or
  ``spf=pass`` with the ``smtp.mailfrom`` domain aligned with it. Aligned: the same domain, or one a
  subdomain of the other (DMARC's relaxed alignment, without a public-suffix list: a bare top-level
  domain never aligns).

The header is parsed by hand, without regular expressions, at most ``MAX_LENGTH`` characters of it.
"""
from dataclasses import dataclass, field

MAX_LENGTH = 8_000


@dataclass
class Verdict:
    trusted: bool
    reason: str
    results: dict = field(default_factory=dict)  # method -> (result, {property: value}) of the header read


def _strip_comments(value):
    """``value`` without its (possibly nested) parenthesised comments and quoted strings' quotes kept."""
    out, depth, quoted = [], 0, False
    for ch in value:
        if quoted:
            out.append(ch)
            if ch == '"':
                quoted = False
        elif ch == '"' and not depth:
            quoted = True
            out.append(ch)
        elif ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif not depth:
            out.append(ch)
    return "".join(out)


def parse(value):
    """``(authserv_id, {method: (result, {property: value})})`` of one header value; the first result of
    a method counts (a server lists one per signature; any pass for DKIM is looked for separately)."""
    value = _strip_comments(str(value)[:MAX_LENGTH])
    parts = [part.strip() for part in value.split(";")]
    head = parts[0].split()
    authserv_id = head[0].lower() if head else ""
    results, dkim = {}, []
    for part in parts[1:]:
        tokens = part.split()
        if not tokens or "=" not in tokens[0]:
            continue
        method, _, result = tokens[0].partition("=")
        method, result = method.split("/")[0].lower(), result.strip('"').lower()
        properties = {}
        for token in tokens[1:]:
            name, sep, prop = token.partition("=")
            if sep:
                properties[name.lower()] = prop.strip('"').lower()
        if method == "dkim":
            dkim.append((result, properties))
        results.setdefault(method, (result, properties))
    if dkim:
        results["dkim"] = next((d for d in dkim if d[0] == "pass"), dkim[0])
        results["dkim_all"] = dkim
    return authserv_id, results


def _domain(address):
    return (address or "").rpartition("@")[2].strip().strip(">").lower()


def aligned(from_domain, other):
    """Relaxed alignment: the same domain, or one a subdomain of the other (never a bare TLD)."""
    other = (other or "").lstrip("@").rpartition("@")[2].strip(".").lower()
    if not other or not from_domain or "." not in other or "." not in from_domain:
        return False
    return from_domain == other or from_domain.endswith("." + other) or other.endswith("." + from_domain)


def choose(headers, authserv_id=None):
    """The ``Authentication-Results`` header value to believe among ``headers`` (top first), or None."""
    for value in headers[:20]:
        if not authserv_id:
            return value
        if parse(value)[0] == authserv_id.lower():
            return value
    return None


def verdict(sender, headers, authserv_id=None):
    """Whether the receiving server vouched for ``sender`` (the From address), with the reason."""
    value = choose(headers, authserv_id)
    if value is None:
        where = f" from {authserv_id}" if authserv_id else ""
        return Verdict(False, f"no Authentication-Results header{where}")
    _, results = parse(value)
    domain = _domain(sender)
    dmarc = results.get("dmarc")
    if dmarc and dmarc[0] == "pass":
        header_from = dmarc[1].get("header.from")
        if not header_from or header_from == domain:
            return Verdict(True, "dmarc=pass", results)
    for result, properties in results.get("dkim_all", []):
        if result == "pass" and aligned(domain, properties.get("header.d") or properties.get("header.i")):
            return Verdict(True, f"dkim=pass header.d={properties.get('header.d') or properties.get('header.i')}",
                           results)
    spf = results.get("spf")
    if spf and spf[0] == "pass" and aligned(domain, spf[1].get("smtp.mailfrom")):
        return Verdict(True, "spf=pass aligned", results)
    seen = ", ".join(f"{method}={value[0]}" for method, value in results.items() if method != "dkim_all")
    return Verdict(False, f"not authenticated for {domain or 'the sender'} ({seen or 'no results'})", results)
