"""``analyze_texts``: the knowledge base's analysis offered to other services (analytics groups similar tickets
with it): the same terms the index stores, per language, and bad input refused with a code."""
import pytest

from helpdesk_common.errors import ValidationFailed
from helpdesk_kb_search import analysis


def test_each_text_gets_the_terms_the_index_would_store():
    texts = [{"language": "en", "text": "Paying fails at the checkout"}, {"language": "nl", "text": "Ik kan niet inloggen"},
             {"language": "sv", "text": "Fakturan är fel"}, {"language": None, "text": "Payments failed"}]
    terms = analysis.analyze_many(texts)
    assert terms == [analysis.analyze("en", texts[0]["text"]), analysis.analyze("nl", texts[1]["text"]),
                     analysis.analyze("sv", texts[2]["text"]), analysis.analyze("en", texts[3]["text"])]
    assert "the" not in terms[0] and terms[0][1] == terms[3][1] == "fail"  # stop words gone; fails/failed meet


@pytest.mark.parametrize("texts", ["text", [{"language": "en"}], [{"text": 3}],
                                   [{"text": "x"}] * (analysis.MAX_ANALYZED + 1)])
def test_anything_else_is_refused(texts):
    with pytest.raises(ValidationFailed) as refused:
        analysis.analyze_many(texts)
    assert refused.value.code == "invalid_texts"
