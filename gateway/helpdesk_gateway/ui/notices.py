"""An agent's notifications in the workspace: the list, marking read, the badge in the header (fetched when
the page's live stream says a notification came), following a ticket, and the typing half of the open
ticket's collision warning (the stream says "here" and pushes the warning: ``ui/live.py``). Views on the
workspace's blueprint calling the REST routes' functions (``api.notifications``, ``api.presence``)."""
from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..api.notifications import follow_ticket, mark_notifications_read, read_notifications
from ..api.presence import say_present
from .workspace import _names, bp


@bp.get("/notifications")
def notifications():
    return render_template("workspace/notifications.html", page=read_notifications(), names=_names())


@bp.get("/notifications/badge")
def notifications_badge():
    """The header's count of unread notifications (fetched on load and when the live stream says so)."""
    return render_template("workspace/_notifications_badge.html", unread=read_notifications()["unread"])


@bp.post("/notifications/read")
def notifications_read():
    chosen = request.form.get("id", "")
    if chosen.isascii() and chosen.isdigit() and len(chosen) < 19:
        mark_notifications_read({"ids": [int(chosen)]})
        number = request.form.get("ticket", "")
        if number:  # "open": marked read on the way to the ticket
            return redirect(url_for(".ticket", number=number))
    else:
        mark_notifications_read({"all": True})
        flash(_("All notifications marked read."), "success")
    return redirect(url_for(".notifications"))


@bp.post("/tickets/<number>/follow")
def follow(number):
    following = request.form.get("following") == "1"
    follow_ticket(number, following)
    flash(_("You follow this ticket now.") if following else _("You no longer follow this ticket."), "success")
    return redirect(url_for(".ticket", number=number))


@bp.post("/tickets/<number>/presence")
def presence(number):
    """The open ticket page says when its agent starts and stops typing (its live stream says "here"); the
    answer is the warning to show: which colleagues have this ticket open, and who is typing a reply."""
    here = say_present(number, {"typing": request.form.get("typing") == "1"}, g.account.name or g.account.email)
    return render_template("workspace/_presence.html", others=here["others"])
