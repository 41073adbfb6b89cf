"""Which language a ticket is written in, when it does not say: English, Dutch or Swedish.

A small stop-word detector rather than a library, on purpose:

- The platform supports exactly these three languages (the knowledge base's ``LANGUAGES``); a ticket in
  another language has no agent to route to by language anyway, and the detector then answers None.
- Function words (articles, pronouns, prepositions, auxiliaries) make up a third to a half of any
  running text and differ clearly between the three, so two or three sentences suffice; letters only
  one language uses (å, ä, ö: Swedish; the ``ij`` digraph: Dutch) settle the short cases.
- It is deterministic (langdetect is random unless seeded), needs no model files (lingua ships
  hundreds of megabytes for all its languages), costs microseconds per ticket on the routing hot path,
  and adds no dependency to pin and keep current.

Words shared by two languages (``in``, ``is``, ``de``, ``van``...) count for neither. The answer is
None when the evidence is thin (fewer than 2 points) or even.
"""
import re

WORDS = {
    "en": """the a an and or but is are was were be been being have has had do does did not no yes this that
        these those it its i you he she we they me my your our their him her them what which who when where
        why how of to for with on at from by about into over after than then there here can could will would
        should shall may might must please thanks thank hello hi dear since just still also very all any some
        out up my get got cannot can't don't doesn't isn't it's i'm i've working work again every each""",
    "nl": """de het een en of maar is zijn was waren ben bent heb hebt heeft hebben had niet geen ja dit dat
        deze die wat welke wie wanneer waar waarom hoe van naar voor met op bij uit door over na dan er hier
        kan kunnen zal zou moet mag wil graag bedankt dank hallo beste sinds nog ook erg zeer alle elke
        mijn uw jullie onze hun ik je jij u hij zij wij we ze mij hem haar ons werkt werken sinds sinds
        weer al nu niets iets gaat doet wordt worden kunt toch even maandag week""",
    "sv": """och att det som en ett är var varit vara har hade inte ingen ja nej den denna detta dessa vad
        vilken vem när var varför hur av till för med på vid från om över efter än sedan där här kan kunde
        ska skulle måste får vill tack hej hallå sedan bara fortfarande också mycket alla varje min mitt
        mina din ditt er vår vårt deras jag du han hon vi de mig honom henne oss dem fungerar jobbar igen
        nu inget något går gör blir bli kan ni sig sin sitt""",
}

_TOKENS = re.compile(r"[a-zåäöéëïüóáèç'’]+")
_SETS = {language: set(words.split()) for language, words in WORDS.items()}
_SHARED = {word for word in set.union(*_SETS.values())
           if sum(word in words for words in _SETS.values()) > 1}
_UNIQUE = {language: words - _SHARED for language, words in _SETS.items()}
MIN_SCORE = 2


def detect_language(*texts):
    """``"en"``, ``"nl"``, ``"sv"``, or None when the texts do not say clearly."""
    text = " ".join(t for t in texts if t).lower().replace("’", "'")
    scores = dict.fromkeys(_UNIQUE, 0.0)
    for token in _TOKENS.findall(text):
        for language, words in _UNIQUE.items():
            if token in words:
                scores[language] += 1
        if "å" in token or "ä" in token or "ö" in token:
            scores["sv"] += 1
        if "ij" in token:
            scores["nl"] += 0.5
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    (best, top), (_, second) = ranked[0], ranked[1]
    if top < MIN_SCORE or top == second:
        return None
    return best
