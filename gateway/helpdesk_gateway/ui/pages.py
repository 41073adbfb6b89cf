"""Errors on UI pages answer an HTML page (the API keeps its JSON): same status, same stable code."""
from flask import g, redirect, render_template, request, url_for


def error_page(status, code, message):
    """The page for an error on a UI address, or None for other addresses (they answer JSON)."""
    from . import BLUEPRINTS

    if request.blueprint not in BLUEPRINTS:
        return None
    if status == 401 and g.get("account") is None:
        return redirect(url_for("ui_signin.sign_in_form"))
    template = "portal/error.html" if request.blueprint == "portal" else "error.html"  # the visitor stays in the portal
    return render_template(template, status=status, code=code, message=message), status
