"""Language analysis: stems, synonyms, compounds, snippets, rendering."""
from kb_search import analysis
from kb_search.rendering import render


def test_stems_per_language():
    assert analysis.analyze("en", "Resetting the passwords") == ["reset", "password"]
    assert analysis.analyze("nl", "facturen") == analysis.analyze("nl", "factuur")
    # The light Swedish step: definite forms meet the indefinite ones.
    assert analysis.analyze("sv", "lösenordet") == analysis.analyze("sv", "lösenord")
    assert analysis.words("Can't sign-in") == ["cant", "sign", "in"]


def test_synonyms_expand_the_query_at_a_lower_weight():
    query = analysis.analyze_query("en", "my card got declined")
    assert query.terms["declin"] == 1.0
    assert query.terms["refus"] == analysis.SYNONYM_WEIGHT
    assert "receipt" in analysis.expansions("en", "where is my invoice") or "bill" in " ".join(
        analysis.expansions("en", "where is my invoice"))


def test_prefix_is_kept_for_suggestions():
    query = analysis.analyze_query("en", "cannot downl", prefix=True)
    assert query.prefix == "downl" and "downl" not in query.terms
    assert analysis.analyze_query("en", "cannot download ", prefix=True).prefix == ""


def test_compounds_split_into_known_parts():
    moms, nummer, langsam = analysis.stem_words("sv", ["moms", "nummer", "långsam"])
    known = {moms, nummer, langsam}.__contains__
    assert analysis.compound_parts("sv", "momsnummer", known) == [moms, nummer]
    assert analysis.compound_parts("sv", "jättelångsam", known) == ["långsam"]
    assert analysis.compound_parts("sv", "xyzzyq", known) == []


def test_snippet_marks_matches_and_escapes():
    text = "Intro words. " * 20 + "Click <Download> to get the invoice & more."
    snippet = analysis.snippet("en", text, {"invoic", "download"})
    assert "<mark>invoice</mark>" in snippet and "&lt;<mark>Download</mark>&gt;" in snippet
    assert snippet.startswith("…") and "&amp;" in snippet
    assert analysis.snippet("en", "no match here", {"zebra"}) == "no match here"


def test_rendering_is_safe():
    html = render("**b** <img src=x onerror=alert(1)> [a](javascript:alert(1)) [ok](https://example.com)")
    assert "<strong>b</strong>" in html and "onerror" not in html.replace("&lt;img src=x onerror", "")
    assert 'href="javascript' not in html and 'href="https://example.com"' in html
    assert 'rel="noopener noreferrer nofollow"' in html
