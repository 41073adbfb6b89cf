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


class _Converter(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.lines = []      # finished lines: (quote depth, text)
        self.current = []    # pieces of the line being built
        self.depth = 0       # blockquote nesting
        self.skipping = 0
        self.pre = 0
        self.links = []      # (href, position in current text) of open <a>
        self.cell = False

    # -- building lines
    def _text(self):
        return "".join(self.current)

    def newline(self, force=False):
        text = self._text()
        if not self.pre:
            text = re.sub(r"[ \t\r\n\f\u00a0]+", " ", text).strip()
        if text or force:
            self.lines.append((self.depth, text))
        self.current = []

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
            self.current.append("- ")
        elif tag in ("td", "th"):
            if self.cell:
                self.current.append(" | ")
            self.cell = True
        elif tag == "img":
            alt = (attrs.get("alt") or "").strip()
            if alt:
                self.current.append(f"[{alt}]")
        elif tag == "a":
            self.links.append((attrs.get("href") or "", len(self._text())))
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
                self.current.append("----")
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
            href, start = self.links.pop()
            label = self._text()[start:].strip()
            if href.startswith(("http://", "https://")) and href.rstrip("/") != label.rstrip("/"):
                self.current.append(f" ({href})" if label else href)
            elif href.startswith("mailto:") and not label:
                self.current.append(href[7:])
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
                self.current.append(part)
        else:
            self.current.append(data)

    def result(self):
        self.newline()
        out = []
        for depth, text in self.lines:
            prefix = "> " * depth
            out.append((prefix + text).rstrip() if text else prefix.rstrip())
        text = "\n".join(out)
        text = re.sub(r"\n{3,}", "\n\n", text)
        return text.strip("\n")


def html_to_text(html):
    """Readable plain text of an HTML document or fragment."""
    converter = _Converter()
    converter.feed(html)
    converter.close()
    return converter.result()
