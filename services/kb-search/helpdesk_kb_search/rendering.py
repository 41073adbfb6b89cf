"""Markdown to HTML that is safe to put in a page: rendered by markdown-it, then sanitised by nh3.

Raw HTML in the Markdown is escaped (not passed through), and the result is cleaned again by an
allow-list sanitiser, so neither a script tag nor a ``javascript:`` link nor an event-handler attribute
reaches a reader, whoever wrote the article.
"""
import nh3
from markdown_it import MarkdownIt

_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"])

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "s", "code", "pre",
    "blockquote", "ul", "ol", "li", "a", "img", "table", "thead", "tbody", "tr", "th", "td",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"},
                      "th": {"style"}, "td": {"style"}}


def render(markdown_text):
    """Sanitised HTML of an article body written in Markdown."""
    html = _MARKDOWN.render(markdown_text)
    return nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                     url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer nofollow",
                     filter_style_properties={"text-align"})
