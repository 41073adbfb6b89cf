"""How did we do? The page behind the survey mail's one-click ratings: no sign-in, the signed link is the
credential (the surveys service checks it). Opening a rating link records that rating at once (one click);
the page then offers a comment and another rating, and a later answer replaces the earlier one."""
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..api.surveys import answer_recommendation, answer_survey, read_recommendation, read_survey
from . import bp

RATINGS = (5, 4, 3, 2, 1)


def _rating(value):
    return int(value) if value in ("1", "2", "3", "4", "5") else None


@bp.get("/satisfaction/<token>")
def satisfaction(token):
    rating = _rating(request.args.get("rating"))
    survey = answer_survey(token, rating) if rating else read_survey(token)
    return render_template("portal/satisfaction.html", survey=survey, token=token, ratings=RATINGS,
                           just_rated=rating is not None)


@bp.post("/satisfaction/<token>")
def satisfaction_answer(token):
    rating = _rating(request.form.get("rating"))
    survey = read_survey(token)
    if rating is None:
        return render_template("portal/satisfaction.html", survey=survey, token=token, ratings=RATINGS,
                               just_rated=False, problem=_("Choose a rating from 1 to 5.")), 422
    answer_survey(token, rating, request.form.get("comment", "").strip()[:5000])  # "" clears the comment
    flash(_("Thank you: your answer is recorded."), "success")
    return redirect(url_for(".satisfaction", token=token))


@bp.get("/recommend/<token>")
def recommend(token):
    """NPS: 0-10, recorded by one click from the mail; the page asks why."""
    score = request.args.get("score")
    score = int(score) if score and score.isdigit() and int(score) <= 10 else None
    survey = answer_recommendation(token, score) if score is not None else read_recommendation(token)
    return render_template("portal/recommend.html", survey=survey, token=token, just_rated=score is not None)


@bp.post("/recommend/<token>")
def recommend_answer(token):
    score = request.form.get("score")
    survey = read_recommendation(token)
    if not (score and score.isdigit() and int(score) <= 10):
        return render_template("portal/recommend.html", survey=survey, token=token, just_rated=False,
                               problem=_("Choose a score from 0 to 10.")), 422
    answer_recommendation(token, int(score), request.form.get("comment", "").strip()[:5000])
    flash(_("Thank you: your answer is recorded."), "success")
    return redirect(url_for(".recommend", token=token))
