"""Language analysis shared by the backends: tokens, stop words, Snowball stems, synonyms, snippets.

The embedded backend indexes and queries with these functions only (one source of truth for both sides);
the Elasticsearch backend lets Elasticsearch's own language analyzers do the stemming and takes from here
only what is backend-neutral: the synonym expansion of the query and the query's wording.

Stemming uses PyStemmer (the Snowball algorithms in C): ``english``, ``dutch``, ``swedish``.
"""
import functools
import hashlib
import html
import os
import re
from dataclasses import dataclass, field

import Stemmer

from helpdesk_common.contracts.kb import LANGUAGES
from helpdesk_common.errors import ValidationFailed

HERE = os.path.dirname(os.path.abspath(__file__))
SNOWBALL = {"en": "english", "nl": "dutch", "sv": "swedish"}
# Apostrophes vanish before tokenising: "can't" and "cant" are the same word to a customer.
_APOSTROPHES = re.compile(r"['\u2019\u00b4`]")
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def _read_words(path):
    words = []
    with open(path, encoding="utf-8") as stream:
        for line in stream:
            line = line.split("#", 1)[0]
            words.extend(line.split())
    return words


@functools.lru_cache(maxsize=None)
def stopwords(lang):
    return frozenset(_read_words(os.path.join(HERE, "stopwords", f"{lang}.txt")))


@functools.lru_cache(maxsize=None)
def _stemmer(lang):
    stemmer = Stemmer.Stemmer(SNOWBALL[lang])
    stemmer.maxCacheSize = 200_000
    return stemmer


def words(text):
    """Lower-cased word tokens, apostrophes removed."""
    return _TOKEN.findall(_APOSTROPHES.sub("", text.lower()))


def word_spans(text):
    """``(start, end, lower-cased word)`` of each word of ``text`` (for highlighting the original)."""
    return [(m.start(), m.end(), m.group().lower()) for m in _TOKEN.finditer(text)]


# Snowball's Swedish stemmer leaves the definite endings -et and -an ("mejlet", "fakturan"), so the
# form a customer types ("lösenordet") misses the form an article uses ("lösenord"). A light extra step
# removes them when enough of the word remains. Applied to index and query alike.
_SV_DEFINITE = ("et", "an")


def _swedish_light(stem):
    if len(stem) >= 6 and stem.endswith(_SV_DEFINITE):
        return stem[:-2]
    return stem


def stem_words(lang, tokens):
    stems = _stemmer(lang).stemWords(tokens)
    if lang == "sv":
        stems = [_swedish_light(s) for s in stems]
    return stems


def compound_parts(lang, word, known, min_part=3):
    """Split an unknown compound (Dutch and Swedish write them as one word) into two known stems.

    ``known(stem)`` says whether the index has a stem. Tries every split point, also dropping a linking
    ``s`` or ``e`` between the parts; prefers the split with the longest known head (the last part,
    which carries the meaning in Germanic compounds). Returns ``[]`` when no split is known on both sides.
    """
    best = None
    for i in range(min_part, len(word) - min_part + 1):
        left, right = word[:i], word[i:]
        lefts = [left] + ([left[:-1]] if left[-1] in "se" and len(left) > min_part else [])
        right_stem = stem_words(lang, [right])[0]
        if not known(right_stem):
            continue
        for candidate in lefts:
            left_stem = stem_words(lang, [candidate])[0]
            if known(left_stem):
                if best is None or len(right) > len(best[1]):
                    best = (left_stem, right, right_stem)
                break
        if best is None and len(right) >= 5:
            best = (None, right, right_stem)  # an unknown modifier: keep the head alone
    if best is None:
        return []
    return [s for s in (best[0], best[2]) if s]


def analyze(lang, text, keep_stopwords=False):
    """The terms of ``text`` as the index stores them: stems of the words that are not stop words."""
    tokens = words(text)
    if not keep_stopwords:
        stop = stopwords(lang)
        tokens = [t for t in tokens if t not in stop]
    return stem_words(lang, tokens)


MAX_ANALYZED = 1000  # texts per call
MAX_ANALYZED_CHARS = 4000  # of each text


def analyze_many(texts):
    """:func:`analyze` of each ``{"language", "text"}`` (a language the knowledge base has not: English)."""
    if not isinstance(texts, list) or len(texts) > MAX_ANALYZED or not all(
            isinstance(t, dict) and isinstance(t.get("text"), str) for t in texts):
        raise ValidationFailed(f"Give a list of at most {MAX_ANALYZED} {{language, text}} items.",
                               code="invalid_texts", details=[{"field": "texts", "code": "invalid_value"}])
    return [analyze(t.get("language") if t.get("language") in SNOWBALL else "en", t["text"][:MAX_ANALYZED_CHARS])
            for t in texts]


def html_to_text(body_html):
    """Plain text of rendered HTML (what is indexed and what snippets are cut from)."""
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", body_html))).strip()


# --- synonyms ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SynonymGroup:
    phrases: tuple[tuple[str, ...], ...]  # each phrase as stems (stop words kept)
    texts: tuple[str, ...]  # each phrase as written
    key: str  # the group's token in the index (see :func:`document_terms`)
    stems: frozenset = frozenset()  # the stems of its phrases without stop words (for highlighting)


def _group_key(phrases):
    # Derived from the group's content, not its line number: reordering the file changes nothing, and
    # editing a group gives it a new key (the index needs ``kb-reindex`` then, like any analysis change).
    # The underscore keeps it apart from every word: a word token never contains one.
    digest = hashlib.blake2b("|".join(" ".join(p) for p in phrases).encode(), digest_size=5).hexdigest()
    return f"_syn{digest}"


@functools.lru_cache(maxsize=None)
def synonym_groups(lang):
    """Groups of phrases a customer and an article may use for the same thing (``synonyms/<lang>.txt``).

    One group a line, phrases separated by commas. A query containing one phrase of a group also looks
    for the others, at a lower weight than the words the customer typed.
    """
    path = os.path.join(HERE, "synonyms", f"{lang}.txt")
    groups = []
    if not os.path.exists(path):
        return ()
    stop = stopwords(lang)
    with open(path, encoding="utf-8") as stream:
        for line in stream:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            texts = tuple(p.strip() for p in line.split(",") if p.strip())
            phrases = tuple(tuple(stem_words(lang, words(t))) for t in texts)
            # (a stem of one or two letters, as "e" of "e-post", would mark every word it begins)
            stems = frozenset(s for t in texts for w, s in zip(words(t), stem_words(lang, words(t)))
                              if w not in stop and len(s) >= 3)
            groups.append(SynonymGroup(phrases=phrases, texts=texts, key=_group_key(phrases), stems=stems))
    return tuple(groups)


@functools.lru_cache(maxsize=None)
def _phrases_by_first_stem(lang):
    """``first stem -> [(phrase, group number, phrase number)]``: finding the phrases in a text is then
    one dictionary look-up per word, not a scan of every phrase of every group."""
    table = {}
    for g, group in enumerate(synonym_groups(lang)):
        for p, phrase in enumerate(group.phrases):
            if phrase:
                table.setdefault(phrase[0], []).append((phrase, g, p))
    return table


def synonym_matches(lang, stems):
    """The synonym groups whose phrases occur in ``stems`` (stop words kept): ``{group number: {start
    position: phrase number}}`` in group order."""
    table = _phrases_by_first_stem(lang)
    found = {}
    count = len(stems)
    for i, stem in enumerate(stems):
        entries = table.get(stem)
        if not entries:
            continue
        for phrase, g, p in entries:
            n = len(phrase)
            if n == 1 or (i + n <= count and tuple(stems[i:i + n]) == phrase):
                found.setdefault(g, {}).setdefault(i, p)
    return dict(sorted(found.items()))


def expansions(lang, text):
    """Synonym phrases (as written) that the query ``text`` calls for, without the ones it contains."""
    groups = synonym_groups(lang)
    found, seen = [], set()
    for g, starts in synonym_matches(lang, stem_words(lang, words(text))).items():
        hits = set(starts.values())
        for i, phrase_text in enumerate(groups[g].texts):
            if i not in hits and phrase_text not in seen:
                seen.add(phrase_text)
                found.append(phrase_text)
    return found


def document_terms(lang, text):
    """What the index stores of ``text``: the stems of its words that are not stop words, then the key of
    each synonym group one of whose phrases occurs in it (once per occurrence).

    Synonyms are expanded here, once per document, so that a query only adds one term per group it
    mentions (:func:`analyze_query`) instead of every word of every other phrase of the group.
    """
    tokens = words(text)
    stems = stem_words(lang, tokens)
    stop = stopwords(lang)
    terms = [stem for token, stem in zip(tokens, stems) if token not in stop]
    groups = synonym_groups(lang)
    for g, starts in synonym_matches(lang, stems).items():
        terms.extend([groups[g].key] * len(starts))
    return terms


# --- the query, analysed -----------------------------------------------------------------------

# Dutch splits a separable verb in a sentence: "hoe nodig ik een collega uit" is "uitnodigen" (invite),
# "ik zeg het abonnement op" is "opzeggen" (cancel), while articles name the action as one word. Each
# particle of the query is joined to each other word of it ("uit" + "nodig" -> "uitnodig"); a joined
# word that no article has simply matches nothing.
SEPARABLE_PARTICLES = {"nl": frozenset(("aan", "af", "bij", "door", "in", "mee", "na", "om", "op", "over",
                                         "terug", "toe", "uit", "vast", "voor", "weg", "los"))}
MAX_JOINED = 6

# A synonym phrase counts for less than the words the customer typed (Elasticsearch: each phrase of the
# group at this weight).
SYNONYM_WEIGHT = 0.6
# The embedded backend's one term per group matches every phrase of the group, so BM25 finds it more
# common than any one of them (a lower IDF), and it also matches the phrase typed: at 1.0 it earns about
# what one synonym earned at SYNONYM_WEIGHT (chosen on queries.json + queries_dev.json: 0.6 -> 1.0
# raised MRR@10 from 0.91 to 0.94; 1.0-1.5 rank the same).
SYNONYM_GROUP_WEIGHT = 1.0
MAX_QUERY_TERMS = 24
MAX_SYNONYM_GROUPS = 8


@dataclass
class AnalyzedQuery:
    """A query in one language: weighted stems, plus the word being typed (for suggestions)."""

    lang: str
    terms: dict[str, float] = field(default_factory=dict)  # stem -> weight
    typed: list[str] = field(default_factory=list)  # stems the person typed (typo candidates)
    surface: dict[str, str] = field(default_factory=dict)  # stem -> a word as typed
    prefix: str = ""  # an unfinished last word, lower case
    synonyms: dict[str, float] = field(default_factory=dict)  # synonym group key -> weight
    synonym_stems: set[str] = field(default_factory=set)  # the stems of those groups' other phrases
    joined: list[str] = field(default_factory=list)  # separable verbs joined again (Dutch), as words

    @property
    def highlight_stems(self):
        return set(self.terms) | self.synonym_stems


def analyze_query(lang, text, *, prefix=False, max_terms=MAX_QUERY_TERMS):
    """Weighted stems of a query: the words typed (1.0), and the synonym groups they mention
    (``SYNONYM_GROUP_WEIGHT``, one index term per group: see :func:`document_terms`).

    With ``prefix``, an unfinished last word (no space after it) is kept aside as a prefix to complete.
    Stop words are dropped, unless the query has nothing else.
    """
    query = AnalyzedQuery(lang=lang)
    tokens = words(text)
    # Synonyms are looked for in every word, the one still being typed too (it may be complete).
    groups = synonym_groups(lang)
    mentioned = list(synonym_matches(lang, stem_words(lang, tokens)))[:MAX_SYNONYM_GROUPS]
    if prefix and tokens and text and not text[-1].isspace() and text[-1].isalnum():
        last = tokens.pop()
        if len(last) >= 3 and last not in stopwords(lang):
            query.prefix = last
    stop = stopwords(lang)
    all_stems = stem_words(lang, tokens)
    kept = [(t, s) for t, s in zip(tokens, all_stems) if t not in stop] or (
        [] if query.prefix else list(zip(tokens, all_stems)))
    for token, stem in kept:
        if len(query.terms) >= max_terms:
            break
        if stem not in query.terms:
            query.terms[stem] = 1.0
            query.typed.append(stem)
            query.surface[stem] = token
    particles = SEPARABLE_PARTICLES.get(lang)
    if particles:
        present = [t for t in dict.fromkeys(tokens) if t in particles]
        verbs = [t for t, _s in kept if t not in particles]
        joined = [p + v for p in present for v in verbs if not v.startswith(p)][:MAX_JOINED]
        for word, stem in zip(joined, stem_words(lang, joined)):
            if stem not in query.terms:
                query.terms[stem] = 1.0
                query.surface[stem] = word
                query.joined.append(word)
    for g in mentioned:
        query.synonyms[groups[g].key] = SYNONYM_GROUP_WEIGHT
        query.synonym_stems.update(groups[g].stems - set(query.terms))
    return query


# --- snippets -----------------------------------------------------------------------------------

SNIPPET_CHARS = 180
_SCAN_CHARS = 4000


@functools.lru_cache(maxsize=16384)
def _prefix_pattern(prefix, flags=0):
    """A word's rest after ``prefix``. One pattern per prefix, kept: the vocabulary is bounded, while a
    pattern of a whole query's stems would be compiled anew for nearly every query (~0.3 ms each)."""
    return re.compile(re.escape(prefix) + r"[^\W_]*", flags)


def _word_candidates(text, stems, flags=0):
    """``(start, end, word)`` of the words of ``text`` that begin like one of ``stems``, in order (a stem
    is nearly always a prefix of its words; for stems ending in ``i``, as in apply/appli, one letter
    less). Each prefix is a literal search in C; a match inside a word is dropped."""
    prefixes = {stem[:-1] if stem.endswith("i") and len(stem) > 3 else stem for stem in stems}
    found = {}
    for prefix in prefixes:
        if not prefix:
            continue
        for match in _prefix_pattern(prefix, flags).finditer(text):
            start = match.start()
            if start and text[start - 1].isalnum():
                continue
            found[start] = (start, match.end(), match.group())
    return [found[start] for start in sorted(found)]


def _head(text, size):
    return html.escape(text[:size]) + ("…" if len(text) > size else "")


def snippet(lang, text, stems, *, size=SNIPPET_CHARS, pre="<mark>", post="</mark>"):
    """An HTML-safe excerpt of ``text`` around the densest cluster of query ``stems``, matches marked.

    The text is escaped; only the ``pre``/``post`` marks are markup. Without a match, the opening words.
    Candidate words are found by a literal search per stem, and only those are stemmed to confirm them.
    """
    if not stems:
        return _head(text, size)
    scanned = text[:_SCAN_CHARS]
    lowered = scanned.lower()  # stems are lower case; matching lower-cased text beats re.IGNORECASE
    if len(lowered) == len(scanned):
        candidates = _word_candidates(lowered, stems)
    else:  # a letter whose lower case is longer (rare): offsets would shift, so match case-blind
        candidates = _word_candidates(scanned, stems, re.IGNORECASE)
    if not candidates:
        return _head(text, size)
    confirmed = stem_words(lang, words(" ".join(w for _, _, w in candidates))) if candidates else []
    if len(confirmed) != len(candidates):  # a word with an apostrophe split differently: stem one by one
        confirmed = [(stem_words(lang, words(w)) or [""])[0] for _, _, w in candidates]
    matches = [(s, e, stem) for (s, e, _w), stem in zip(candidates, confirmed) if stem in stems]
    if not matches:
        return _head(text, size)
    # The window of ``size`` characters holding the most distinct matched stems.
    best, best_score = 0, -1
    for i, (start, _e, _s) in enumerate(matches):
        distinct, j = set(), i
        while j < len(matches) and matches[j][1] - start <= size:
            distinct.add(matches[j][2])
            j += 1
        score = len(distinct) * 10 + (j - i)
        if score > best_score:
            best, best_score = i, score
    start = matches[best][0]
    # Step back a little so the match is not the very first word, at a word boundary.
    lead = max(0, start - size // 4)
    if lead > 0:
        space = text.find(" ", lead, start)
        lead = space + 1 if space != -1 else start
    end = min(len(text), lead + size)
    if end < len(text):
        cut_back = text.rfind(" ", lead, end)
        if cut_back > start:
            end = cut_back
    out, pos = [], lead
    for s, e, _stem in matches:
        if s < lead or e > end:
            continue
        out.append(html.escape(text[pos:s]))
        out.append(pre + html.escape(text[s:e]) + post)
        pos = e
    out.append(html.escape(text[pos:end]))
    return ("…" if lead > 0 else "") + "".join(out).strip() + ("…" if end < len(text) else "")


def category_paths(category):
    """``billing/invoices`` -> ``["billing", "billing/invoices"]``: a filter on a parent finds children."""
    if not category:
        return []
    parts = category.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def check_language(lang):
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}")
    return lang
