"""Surge detection: more new tickets of one kind in the last window than that hour of the week usually brings.

Plain functions of frozen records and an explicit ``now`` (no nameko, no database): the service feeds them the
tickets the store has and announces what they find (``spike_detected``).

The statistics (also in the README):
- An *arrival* is a new ticket with its category, team, channel and the terms of its wording.
- For each value of each dimension, ``count`` is the number of arrivals in the window ``[now - WINDOW, now)``.
- Its usual level ``baseline`` is the mean count of the same window of the week (same weekday, same time of day)
  in each of the ``BASELINE_WEEKS`` weeks before: support traffic follows the hour of the week (Monday mornings
  are busy, Sunday nights are not), so comparing with the last hours would flag every Monday morning.
- New tickets are independent arrivals, so under the usual level ``count`` is Poisson(λ) with
  λ = max(baseline, ``MIN_RATE``) (the floor keeps a quiet hour, whose mean is 0, from making two tickets a
  surge). A surge is flagged when ``P(X ≥ count | λ) < ALPHA`` **and** ``count ≥ MIN_COUNT`` **and**
  ``count ≥ RATIO × baseline``: a surge must be improbable, big enough to matter, and a real multiple.
- Wording: the window's arrivals are clustered by their terms (:func:`group_similar`); a cluster of at least
  ``MIN_COUNT`` tickets is named by the terms most of its members share (its *signature*), and its baseline
  counts earlier arrivals whose terms contain the whole signature.
- Windows from before the store's first ticket are no samples (a new install, or a store not rebuilt yet,
  has not seen those weeks: they were not quiet). With no sample at all, only the floor judges.
"""
import math
from bisect import bisect_left
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

WINDOW = timedelta(hours=1)
BASELINE_WEEKS = 4
MIN_RATE = 0.5
ALPHA = 1e-6
MIN_COUNT = 5
RATIO = 3.0
DIMENSIONS = ("category", "team", "channel")
WORDING = "wording"
SIMILARITY = 0.35  # Jaccard of two tickets' term sets from which they count as the same problem
SIGNATURE_SHARE = 0.6  # a term belongs to a cluster's signature when this share of its members use it
SIGNATURE_TERMS = 3


@dataclass(frozen=True)
class Arrival:
    number: str
    created_at: datetime
    category: Optional[str] = None
    team: Optional[str] = None
    channel: Optional[str] = None
    terms: frozenset = frozenset()


@dataclass(frozen=True)
class Surge:
    dimension: str  # category, team, channel or wording
    value: str  # the category, team or channel; for wording the signature's terms, space-separated
    window_start: datetime
    window_end: datetime
    count: int
    baseline: float
    tickets: tuple  # the numbers of the window's arrivals involved, oldest first


def poisson_tail(count, rate):
    """``P(X ≥ count)`` for ``X ~ Poisson(rate)``."""
    if count <= 0:
        return 1.0
    term, below = math.exp(-rate), 0.0
    for k in range(count):
        below += term
        term *= rate / (k + 1)
    return max(0.0, 1.0 - below)


def is_surge(count, baseline):
    return (count >= MIN_COUNT and count >= RATIO * baseline
            and poisson_tail(count, max(baseline, MIN_RATE)) < ALPHA)


class Arrivals:
    """The arrivals a detector looks at, indexed so that counting a window is two bisections."""

    def __init__(self, arrivals, known_since=None):
        """``known_since``: since when the store has every new ticket (its first one); a baseline window before
        it is left out of the mean rather than counted as a quiet hour. Default: the first of ``arrivals``."""
        self.all = sorted(arrivals, key=lambda a: (a.created_at, a.number))
        self.known_since = known_since or (self.all[0].created_at if self.all else None)
        self.times = [a.created_at for a in self.all]
        self.by_value = defaultdict(list)  # (dimension, value) -> sorted times
        for arrival in self.all:
            for dimension in DIMENSIONS:
                value = getattr(arrival, dimension)
                if value:
                    self.by_value[(dimension, value)].append(arrival.created_at)

    def window(self, start, end):
        return self.all[bisect_left(self.times, start):bisect_left(self.times, end)]

    def count(self, dimension, value, start, end):
        times = self.by_value.get((dimension, value), ())
        return bisect_left(times, end) - bisect_left(times, start)


def _baseline(count_in, now, known_since):
    """Mean count of the same window, and of the windows one ``WINDOW`` before and after it, in each of the
    previous ``BASELINE_WEEKS`` weeks (twelve samples: four alone are too few to know a rate by). Windows from
    before ``known_since`` are not samples; with none left the baseline is 0 (the ``MIN_RATE`` floor judges)."""
    windows = [(now - WINDOW - timedelta(weeks=w) + shift * WINDOW, now - timedelta(weeks=w) + shift * WINDOW)
               for w in range(1, BASELINE_WEEKS + 1) for shift in (-1, 0, 1)]
    counts = [count_in(start, end) for start, end in windows if known_since is None or start >= known_since]
    return sum(counts) / len(counts) if counts else 0.0


def detect(arrivals, now):
    """The surges at ``now`` among ``arrivals`` (an :class:`Arrivals`; it must hold the previous
    ``BASELINE_WEEKS`` weeks for the baselines to mean anything), most tickets first."""
    start = now - WINDOW
    recent = arrivals.window(start, now)
    found = []
    for dimension in DIMENSIONS:
        for value in sorted({getattr(a, dimension) for a in recent if getattr(a, dimension)}):
            involved = [a for a in recent if getattr(a, dimension) == value]
            baseline = _baseline(lambda s, e: arrivals.count(dimension, value, s, e), now, arrivals.known_since)
            if is_surge(len(involved), baseline):
                found.append(Surge(dimension, value, start, now, len(involved), baseline,
                                   tuple(a.number for a in involved)))
    for group in group_similar([(a.number, a.terms) for a in recent]):
        if len(group) < MIN_COUNT:
            continue
        members = [a for a in recent if a.number in set(group)]
        words = signature([a.terms for a in members])
        if not words:
            continue

        def usual(s, e, words=words):
            return sum(1 for a in arrivals.window(s, e) if words <= a.terms)
        baseline = _baseline(usual, now, arrivals.known_since)
        if is_surge(len(members), baseline):
            found.append(Surge(WORDING, " ".join(sorted(words)), start, now, len(members), baseline,
                               tuple(a.number for a in members)))
    return sorted(found, key=lambda s: (-s.count, s.dimension, s.value))


def signature(term_sets):
    """The terms (at most ``SIGNATURE_TERMS``) that at least ``SIGNATURE_SHARE`` of a cluster's members use."""
    counts = Counter(term for terms in term_sets for term in set(terms))
    needed = SIGNATURE_SHARE * len(term_sets)
    common = sorted((term for term, n in counts.items() if n >= needed), key=lambda t: (-counts[t], t))
    return frozenset(common[:SIGNATURE_TERMS])


def similarity(first, second):
    """Jaccard similarity of two term sets."""
    if not first or not second:
        return 0.0
    return len(first & second) / len(first | second)


def group_similar(tickets, threshold=SIMILARITY):
    """Group tickets ``(number, terms)`` whose wording is alike: two tickets at least ``threshold`` similar are
    in one group, and groups join through shared members (single link). Only groups of two or more, each
    sorted by number, the biggest first.

    An inverted index of terms finds the candidates, so a ticket is compared only with those sharing a term."""
    terms = {number: frozenset(words) for number, words in tickets}
    parent = {number: number for number in terms}

    def root(number):
        while parent[number] != number:
            parent[number] = parent[parent[number]]
            number = parent[number]
        return number

    postings = defaultdict(list)
    for number in sorted(terms):
        candidates = {other for term in terms[number] for other in postings[term]}
        for other in candidates:
            if similarity(terms[number], terms[other]) >= threshold:
                parent[root(number)] = root(other)
        for term in terms[number]:
            postings[term].append(number)
    groups = defaultdict(list)
    for number in terms:
        groups[root(number)].append(number)
    return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: (-len(g), g[0]))
