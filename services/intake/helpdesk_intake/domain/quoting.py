"""Separating what a customer wrote now from the earlier conversation their mail client quoted.

The split is at the first line that starts a quote: an attribution line ("On ... wrote:", Dutch
"Op ... schreef ...:", Swedish "Den ... skrev ...:"), an Outlook header block ("-----Original
Message-----", or "From:/Van:/Från:" followed by "Sent:/Verzonden:/Skickat:"), our own reply marker, or
a run of "> " lines that lasts to the end. Everything from there on is the quote; it is kept, apart.
"""
import re

REPLY_MARKER = "## Write your reply above this line ##"

_ATTRIBUTION = [
    re.compile(r"^\s*On\b.{4,300}\bwrote:\s*$", re.I | re.S),
    re.compile(r"^\s*Op\b.{4,300}\b(schreef|geschreven)\b.{0,80}:\s*$", re.I | re.S),
    re.compile(r"^\s*Den\b.{4,300}\bskrev\b.{0,80}:\s*$", re.I | re.S),
    re.compile(r"^\s*Am\b.{4,300}\bschrieb\b.{0,80}:\s*$", re.I | re.S),
    re.compile(r"^\s*Le\b.{4,300}\ba écrit\s*:\s*$", re.I | re.S),
    re.compile(r"^.{2,200}\b(wrote|schreef|skrev)\s*:\s*$", re.I | re.S),
]
_SEPARATORS = re.compile(
    r"^\s*-{2,}\s*(Original Message|Oorspronkelijk bericht|Ursprungligt meddelande|Originalmeddelande|"
    r"Forwarded message|Doorgestuurd bericht|Vidarebefordrat meddelande)\s*-{2,}\s*$", re.I)
_HEADER_FROM = re.compile(r"^\s*\*?(From|Van|Från|Fra)\*?\s*:", re.I)
_HEADER_SENT = re.compile(r"^\s*\*?(Sent|Date|Verzonden|Datum|Skickat|Skickades|Sendt)\*?\s*:", re.I)
_OUTLOOK_RULE = re.compile(r"^\s*_{10,}\s*$")
# Every attribution pattern above needs one of these words: a line without one is not tried against them
# (six patterns on every line, and the last one backtracking, were most of the split's cost).
_ATTRIBUTION_WORD = re.compile(r"wrote|schreef|geschreven|skrev|schrieb|a écrit", re.I)


# The patterns only ever see this much of a line: no separator, header or attribution is longer, and a
# hostile line of megabytes then costs what this much costs.
MAX_LINE = 1000


def _is_quote_line(line):
    return line.lstrip()[:1] == ">"


def _quoted_to_end(lines):
    """For each index, whether every line from it to the end is a quote line or blank: computed once from
    the end (the check "the rest is all quotes" for every quoted line was quadratic in the quote's length:
    200,000 quoted lines froze intake)."""
    flags = [False] * (len(lines) + 1)
    flags[len(lines)] = True
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index]
        flags[index] = flags[index + 1] and (not line.strip() or _is_quote_line(line))
    return flags


def split_reply(text):
    """``(new_text, quoted_text)``; quoted_text is "" when nothing is quoted. Linear in the text's length."""
    whole = text.replace("\r\n", "\n").split("\n")
    lines = [line[:MAX_LINE] for line in whole]
    rest_quoted = _quoted_to_end(lines)
    cut = None
    for index, line in enumerate(lines):
        if REPLY_MARKER in line:
            cut = index
            break
        if "--" in line and _SEPARATORS.match(line):
            cut = index
            break
        if "__" in line and _OUTLOOK_RULE.match(line) and any(_HEADER_FROM.match(l) for l in lines[index + 1:index + 3]):
            cut = index
            break
        if _HEADER_FROM.match(line) and any(_HEADER_SENT.match(l) for l in lines[index + 1:index + 4]) \
                and (index == 0 or not lines[index - 1].strip()):
            cut = index
            break
        # An attribution may be wrapped over two lines by the client.
        for candidate in (line, line + " " + lines[index + 1] if index + 1 < len(lines) else None):
            if candidate and len(candidate) < 400 and _ATTRIBUTION_WORD.search(candidate) and \
                    any(p.match(candidate) for p in _ATTRIBUTION):
                following = lines[index + 1:index + 4]
                if candidate != line:
                    following = lines[index + 2:index + 5]
                # Only an attribution if a quote follows it (or it ends the text).
                if not any(l.strip() for l in following) or any(_is_quote_line(l) for l in following):
                    cut = index
                    break
        if cut is not None:
            break
        if rest_quoted[index] and _is_quote_line(line):
            cut = index
            break
    if cut is None:
        return text.strip(), ""
    new = "\n".join(whole[:cut]).strip()
    quoted = "\n".join(whole[cut:]).strip()
    return new, quoted
