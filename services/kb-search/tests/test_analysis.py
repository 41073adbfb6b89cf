"""Language analysis: stems, synonyms, compounds, snippets, rendering."""
from helpdesk_kb_search import analysis
from helpdesk_kb_search.rendering import render


def test_stems_per_language():
    assert analysis.analyze("en", "Resetting the passwords") == ["reset", "password"]
    assert analysis.analyze("nl", "facturen") == analysis.analyze("nl", "factuur")
    # The light Swedish step: definite forms meet the indefinite ones.
    assert analysis.analyze("sv", "lösenordet") == analysis.analyze("sv", "lösenord")
    assert analysis.words("Can't sign-in") == ["cant", "sign", "in"]


def test_synonyms_expand_the_query_by_one_term_per_group():
    query = analysis.analyze_query("en", "my card got declined")
    assert query.terms["declin"] == 1.0
    declined = next(g for g in analysis.synonym_groups("en") if "declined" in g.texts)
    assert query.synonyms[declined.key] == analysis.SYNONYM_GROUP_WEIGHT
    assert "refus" not in query.terms and "refus" in query.highlight_stems  # "refused" is marked in snippets
    assert analysis.expansions("en", "where is my invoice") == ["receipt", "bill"]


def test_documents_carry_the_keys_of_the_synonym_groups_they_mention():
    groups = {g.texts[0]: g.key for g in analysis.synonym_groups("en")}
    terms = analysis.document_terms("en", "Your payment was refused. We refused it twice; log in again.")
    assert terms.count(groups["declined"]) == 2  # once per occurrence, like a word
    assert groups["log in"] in terms  # a phrase with a stop word, matched as a phrase
    assert groups["twice"] in terms and "refus" in terms and "log" in terms
    assert groups["log in"] not in analysis.document_terms("en", "the log shows who signed up")
    # The keys are derived from the groups' content and never look like a word.
    assert all(k.startswith("_syn") and analysis.words(k) != [k] for k in groups.values())
    assert len(set(groups.values())) == len(groups)


def test_synonym_phrases_are_found_by_the_lookup_as_by_a_scan():
    stems = analysis.stem_words("en", analysis.words("I was locked out after two times, my coworker too"))
    found = analysis.synonym_matches("en", stems)
    for g, group in enumerate(analysis.synonym_groups("en")):
        contains = any(tuple(stems[i:i + len(p)]) == p for p in group.phrases for i in range(len(stems)))
        assert (g in found) == contains, group.texts


def test_snippet_is_case_blind():
    assert "<mark>INVOICES</mark>" in analysis.snippet("en", "Your INVOICES are here", {"invoic"})


def test_dutch_separable_verbs_are_joined_again():
    query = analysis.analyze_query("nl", "hoe zeg ik mijn abonnement op")
    assert analysis.analyze("nl", "opzeggen")[0] in query.terms and "opzeg" in query.joined
    assert analysis.analyze_query("en", "how do i sign up").joined == []  # Dutch only


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
