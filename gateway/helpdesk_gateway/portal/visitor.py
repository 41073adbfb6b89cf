"""The portal visitor's language: chosen with the language links (a cookie), else the browser's."""
from flask_babel import get_locale

from ..ui.i18n import LANGUAGE_COOKIE
from ..ui.security import secure_cookies
from ..ui.signin import _safe_next as safe_next  # noqa: F401  one check of a redirect target, shared

YEAR = 365 * 24 * 3600


def language():
    return str(get_locale() or "en")


def remember_language(response, code):
    response.set_cookie(LANGUAGE_COOKIE, code, max_age=YEAR, httponly=True, samesite="Lax", secure=secure_cookies(),
                        path="/")

