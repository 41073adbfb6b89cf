"""Languages and time zones: the person's own choice, else the browser's language; UTC by default.

Catalogues (``translations/<lang>/LC_MESSAGES/messages.po``) are committed with their compiled ``.mo``
beside them, so ``make run`` and a wheel need no build step; ``tests/ui/test_translations.py`` checks
that the ``.mo`` files match the ``.po`` files and that nl and sv translate every message.
Update them with ``make translations`` (extract, merge, compile).
"""
import os

from flask import g, request
from flask_babel import Babel, get_translations
from jinja2 import pass_context
from markupsafe import Markup

LANGUAGES = {"en": "English", "nl": "Nederlands", "sv": "Svenska"}
LANGUAGE_COOKIE = "hd_lang"  # a visitor's own choice (the portal's language links), before the browser's
TRANSLATIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "translations")


def locale():
    account = g.get("account")
    if account is not None and account.language in LANGUAGES:
        return account.language
    if request.cookies.get(LANGUAGE_COOKIE) in LANGUAGES:
        return request.cookies[LANGUAGE_COOKIE]
    return request.accept_languages.best_match(LANGUAGES) or "en"


def timezone():
    account = g.get("account")
    return (account.time_zone if account is not None else None) or "UTC"


def _translated_once():
    """``_`` for one rendering, bound to this request's catalogue. A list page translates several hundred
    strings; Flask-Babel's own ``_`` finds the catalogue again through the request context for each one
    (a fifth of the page's template time, profiled). Same meaning as Jinja's newstyle gettext: the
    translation is a format string, escaped under autoescape, with ``%(name)s`` filled in."""
    translations = get_translations()

    @pass_context
    def gettext(__context, __string, **variables):
        text = translations.ugettext(__string)
        if __context.eval_ctx.autoescape:
            text = Markup(text)
        return text % variables

    return {"_": gettext, "gettext": gettext}


def init(app):
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", TRANSLATIONS)
    Babel(app, locale_selector=locale, timezone_selector=timezone)
    app.context_processor(_translated_once)
