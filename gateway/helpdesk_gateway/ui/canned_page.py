"""Managing canned replies in the workspace: every agent their own, admins and supervisors the shared
ones. Views on the workspace's blueprint calling the REST routes' functions (``api.canned_replies``)."""
from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from helpdesk_common.errors import HelpdeskError

from ..api import services, viewer
from ..api.canned_replies import PLACEHOLDERS, create_canned_reply, read_canned_replies
from ..api.tickets import read_workflow
from .workspace import PRIORITIES, bp


@bp.get("/canned-replies")
def canned_replies():
    statuses = [status["name"] for status in read_workflow().get("statuses", [])]
    return render_template("workspace/canned_replies.html", replies=read_canned_replies(), statuses=statuses,
                           priorities=PRIORITIES, placeholders=PLACEHOLDERS,
                           may_share=g.identity.role == "admin")


@bp.post("/canned-replies")
def make_canned_reply():
    reply = {"title": request.form.get("title", "").strip(), "body": request.form.get("body", "").strip(),
             "shared": request.form.get("shared") == "1"}
    for name in ("status", "priority"):
        if request.form.get(name):
            reply[name] = request.form[name]
    try:
        create_canned_reply(reply)
    except HelpdeskError as error:
        if error.status >= 500:
            raise
        flash(_("The canned reply was not saved: %(reason)s", reason=error.message), "error")
        return redirect(url_for(".canned_replies"))
    flash(_("Canned reply saved."), "success")
    return redirect(url_for(".canned_replies"))


@bp.post("/canned-replies/<int:reply_id>/delete")
def delete_canned_reply(reply_id):
    try:
        services().call("tickets", "delete_canned_reply", reply_id, viewer())
    except HelpdeskError as error:
        if error.status >= 500:
            raise
        flash(_("The canned reply was not deleted: %(reason)s", reason=error.message), "error")
        return redirect(url_for(".canned_replies"))
    flash(_("Canned reply deleted."), "success")
    return redirect(url_for(".canned_replies"))
