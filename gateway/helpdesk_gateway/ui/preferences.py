"""A person's own settings: the language of the pages (or the browser's) and the time zone of the times."""
import pytz
from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _, refresh

from helpdesk_common.errors import ValidationFailed

from .. import accounts
from .i18n import LANGUAGES

bp = Blueprint("ui_preferences", __name__, url_prefix="/workspace", template_folder="templates")


@bp.before_request
def signed_in_only():
    if g.get("account") is None:
        return redirect(url_for("ui_signin.sign_in_form"))
    return None


@bp.get("/preferences")
def preferences():
    return render_template("preferences.html", languages=LANGUAGES, zones=pytz.common_timezones)


@bp.post("/preferences")
def save_preferences():
    language = request.form.get("language") or None
    zone = request.form.get("time_zone") or None
    if (language and language not in LANGUAGES) or (zone and zone not in pytz.all_timezones_set):
        raise ValidationFailed("Choose a language and a time zone from the lists.")
    accounts.set_preferences(current_app.extensions["helpdesk.db"], g.account.id, language, zone)
    g.account.language, g.account.time_zone = language, zone
    refresh()  # this answer's flash message in the new language already
    flash(_("Your preferences are saved."), "success")
    return redirect(url_for(".preferences"))
