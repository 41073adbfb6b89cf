"""HTML mail turned into clean text, with the standard library's parser (no dependency to pin).

Paragraphs and line breaks become newlines, lists become "- " items, links keep their address, tables
become one line per row, and ``<blockquote>`` (how mail clients quote) becomes "> " lines, so the
quote separator can tell the new text from the quoted one. Scripts, styles and the head are dropped.
"""
import re
from html.parser import HTMLParser

BLOCK = {"p", "div", "section", "article", "header", "footer", "table", "tr", "ul", "ol", "h1", "h2", "h3",
         "h4", "h5", "h6", "pre", "address", "hr", "center", "form", "fieldset", "dl", "dt", "dd", "body"}
SKIP = {"script", "style", "head", "title", "template", "noscript", "svg"}
VOID_SKIP = {"meta", "link", "base"}
# Bounds against hostile HTML: "> " on every line of a quote nested 10,000 deep made the text quadratic;
# past MAX_DEPTH a deeper quote reads as the deepest. The text stops growing at max_chars (the ticket keeps
# far less), and the parser is fed the document in chunks and stops once the text is full.
MAX_DEPTH = 10
MAX_CHARS = 1_000_000
MAX_LINKS = 100  # open <a> elements tracked at once (a label is read from its start at each </a>)
_CHUNK = 1 << 20
TRUNCATED = "[…]"


class _Full(Exception):
    """The text reached its cap: stop parsing."""


class _Converter(HTMLParser):
    def __init__(self, max_chars=MAX_CHARS):
        super().__init__(convert_charrefs=True)
        self.max_chars = max_chars
        self.size = 0        # characters of text so far, finished lines and the current one
        self.full = False
        self.lines = []      # finished lines: (quote depth, text)
        self.current = []    # pieces of the line being built
        self.line_no = 0     # how many lines were started: a link's position is only good on its own line
        self.depth = 0       # blockquote nesting
        self.skipping = 0
        self.pre = 0
        self.links = []      # (href, line number, index in current) of open <a>
        self.cell = False

    # -- building lines
    def _add(self, piece):
        """Every piece of text goes through here: counted against the cap."""
        room = self.max_chars - self.size
        self.size += len(piece)
        if self.size > self.max_chars:
            self.current.append(piece[:max(room, 0)])
            self.full = True
            raise _Full()
        self.current.append(piece)

    def newline(self, force=False):
        text = "".join(self.current)
        if not self.pre:
            text = re.sub(r"[ \t\r\n\f\u00a0]+", " ", text).strip()
        if text or force:
            self.size += 2 * min(self.depth, MAX_DEPTH) + 1  # the line's "> " prefix and newline
            if self.size > self.max_chars:
                self.full = True
                raise _Full()
            self.lines.append((self.depth, text))
        self.current = []
        self.line_no += 1

    def blank(self):
        self.newline()
        if self.lines and self.lines[-1][1] != "":
            self.lines.append((self.depth, ""))

    # -- parser callbacks
    def handle_starttag(self, tag, attrs):
        if tag in SKIP:
            self.skipping += 1
            return
        if self.skipping or tag in VOID_SKIP:
            return
        attrs = dict(attrs)
        if tag == "br":
            self.newline(force=True)
        elif tag == "blockquote":
            self.blank()
            self.depth += 1
        elif tag == "li":
            self.newline()
            self._add("- ")
        elif tag in ("td", "th"):
            if self.cell:
                self._add(" | ")
            self.cell = True
        elif tag == "img":
            alt = (attrs.get("alt") or "").strip()
            if alt:
                self._add(f"[{alt[:1000]}]")
        elif tag == "a":
            if len(self.links) < MAX_LINKS:
                self.links.append(((attrs.get("href") or "")[:4000], self.line_no, len(self.current)))
        elif tag in BLOCK:
            if tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "pre"):
                self.blank()
            else:
                self.newline()
            if tag == "pre":
                self.pre += 1
            if tag == "tr":
                self.cell = False
            if tag == "hr":
                self._add("----")
                self.newline()

    def handle_endtag(self, tag):
        if tag in SKIP:
            self.skipping = max(0, self.skipping - 1)
            return
        if self.skipping:
            return
        if tag == "blockquote":
            self.blank()
            self.depth = max(0, self.depth - 1)
        elif tag == "a" and self.links:
            href, line_no, start = self.links.pop()
            # Only the label's own pieces are joined (joining the whole line at every </a> was quadratic
            # in the links of a line); a link opened on an earlier line labels with the whole current line.
            label = "".join(self.current[start:] if line_no == self.line_no else self.current).strip()
            if href.startswith(("http://", "https://")) and href.rstrip("/") != label.rstrip("/"):
                self._add(f" ({href})" if label else href)
            elif href.startswith("mailto:") and not label:
                self._add(href[7:])
        elif tag in BLOCK or tag == "li":
            if tag == "pre":
                self.pre = max(0, self.pre - 1)
            if tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "pre"):
                self.blank()
            else:
                self.newline()

    def handle_data(self, data):
        if self.skipping:
            return
        if self.pre:
            parts = data.split("\n")
            for index, part in enumerate(parts):
                if index:
                    self.newline(force=True)
                self._add(part)
        else:
            self._add(data)

    def result(self):
        if not self.full:
            try:
                self.newline()
            except _Full:
                pass
        if self.full and self.current:  # what fitted of the line being built when the cap was reached
            self.lines.append((self.depth, "".join(self.current).strip()))
        out = []
        for depth, text in self.lines:
            prefix = "> " * min(depth, MAX_DEPTH)
            out.append((prefix + text).rstrip() if text else prefix.rstrip())
        if self.full:
            out.append(TRUNCATED)
        text = "\n".join(out)
        text = re.sub(r"\n{3,}", "\n\n", text)
        return text.strip("\n")


def html_to_text(html, max_chars=MAX_CHARS):
    """Readable plain text of an HTML document or fragment, at most about ``max_chars`` characters (then
    ending in "[…]")."""
    converter = _Converter(max_chars)
    try:
        # Fed in large chunks so that parsing stops soon after the text is full; large, because the
        # parser rescans an unfinished construct (an unclosed comment, say) at every feed.
        for start in range(0, len(html), _CHUNK):
            converter.feed(html[start:start + _CHUNK])
        converter.close()
    except _Full:
        pass
    return converter.result()
