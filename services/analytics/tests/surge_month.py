"""A synthetic month of new tickets for the surge detector's tests and ``bench/surges.py``.

Arrivals follow the hour of the week (busy office hours on weekdays, quiet evenings, quieter weekends) as a
Poisson process per hour, spread over categories, teams and channels, each ticket worded from its category's
usual phrasings. ``BASELINE_WEEKS`` weeks come first (the detector's memory), then the month it is judged on.
:func:`inject` adds a surge: many tickets of one new problem, worded alike, in a short time.

Deterministic for a seed.
"""
import random
import re
from datetime import datetime, timedelta, timezone

from helpdesk_analytics.surges import BASELINE_WEEKS, Arrival

START = datetime(2026, 9, 7, tzinfo=timezone.utc)  # a Monday
MONTH = timedelta(weeks=4)
MONTH_START = START + timedelta(weeks=BASELINE_WEEKS)
CATEGORIES = {"access": 0.35, "invoice": 0.3, "shipping": 0.25, "other": 0.1}
TEAMS = {"support": 0.5, "billing": 0.3, "network": 0.2}
CHANNELS = {"email": 0.5, "web": 0.3, "chat": 0.15, "phone": 0.05}
PHRASES = {
    "access": ["cannot log in to my account", "password reset link expired", "locked out after three attempts",
               "two factor code never arrives", "how do I change my username"],
    "invoice": ["invoice shows the wrong amount", "charged twice this month", "need a copy of my receipt",
                "refund not received yet", "change billing address on invoice"],
    "shipping": ["parcel has not arrived", "tracking number does not work", "delivery to wrong address",
                 "package damaged on arrival", "when will my order ship"],
    "other": ["question about your opening hours", "feedback on the new website", "partnership proposal",
              "request for a catalogue", "complaint about a phone call"],
}
SURGE_PHRASES = ["checkout page shows error 503 when paying", "error 503 on the checkout page",
                 "paying fails at checkout with error 503", "checkout error 503 again"]
FILLER = ["hello", "please help", "thanks", "urgent", "since yesterday", "again", "kind regards", "asap"]


def hourly_rate(moment):
    """Expected new tickets in the hour starting at ``moment`` (UTC) across the helpdesk."""
    if moment.weekday() >= 5:
        return 0.5
    return 6.0 if 8 <= moment.hour < 18 else 1.0


STOPWORDS = frozenset("the and with when on at to of for my your this not does has have again since please "
                      "help how do will".split())


def terms(text):
    """Stands in for the knowledge base's analysis (kb_search's ``analyze_texts``, over RPC in the service): the
    lower-cased words of three letters or more that are not stop words. The detector takes whatever terms it
    is given."""
    return frozenset(w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) >= 3 and w not in STOPWORDS)


def _pick(rng, weights):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _poisson(rng, rate):
    # Knuth's method: fine for the small rates of an hour
    limit, k, p = pow(2.718281828459045, -rate), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def quiet(seed=1, weeks=BASELINE_WEEKS + 4):
    """The arrivals of ``weeks`` quiet weeks from :data:`START`."""
    rng = random.Random(seed)
    arrivals, hour, n = [], START, 0
    while hour < START + timedelta(weeks=weeks):
        for _ in range(_poisson(rng, hourly_rate(hour))):
            n += 1
            category = _pick(rng, CATEGORIES)
            text = f"{rng.choice(PHRASES[category])} {rng.choice(FILLER)}"
            arrivals.append(Arrival(f"HD-{n:06d}", hour + timedelta(seconds=rng.randrange(3600)), category,
                                    _pick(rng, TEAMS), _pick(rng, CHANNELS), terms(text)))
        hour += timedelta(hours=1)
    return arrivals


def inject(arrivals, at, count=25, minutes=40, seed=2):
    """``arrivals`` plus ``count`` tickets of one new problem (checkout failing) within ``minutes`` from ``at``:
    category invoice, mostly on the web. Answers ``(arrivals, injected numbers)``."""
    rng = random.Random(seed)
    extra = [Arrival(f"SURGE-{i:03d}", at + timedelta(seconds=rng.randrange(minutes * 60)), "invoice",
                     _pick(rng, TEAMS), "web" if rng.random() < 0.8 else "email",
                     terms(f"{rng.choice(SURGE_PHRASES)} {rng.choice(FILLER)}")) for i in range(count)]
    return arrivals + extra, {a.number for a in extra}
