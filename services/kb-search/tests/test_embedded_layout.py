"""The embedded index's layout: a generation built before the fields per language (one ``title_t`` /
``body_t`` pair for every language, filtered on ``lang``) is still searched correctly by this code until
``kb-reindex`` rebuilds it, and a rebuild moves to the fields per language."""
import json
import os

import tantivy

from helpdesk_kb_search import analysis
from helpdesk_kb_search.backends import embedded
from helpdesk_kb_search.backends.base import IndexDoc, SearchQuery


def legacy_generation(directory, docs):
    """A generation as the code before the fields per language wrote it (its schema and documents)."""
    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field("id", stored=True, indexed=True, fast=True)
    builder.add_unsigned_field("version", stored=True)
    for name in ("lang", "type", "visibility", "category", "tags"):
        builder.add_text_field(name, tokenizer_name="raw", index_option="basic")
    for name in ("title_t", "body_t"):
        builder.add_text_field(name, tokenizer_name="whitespace", index_option="freq")
    builder.add_bytes_field("source", stored=True, indexed=False)
    schema = builder.build()
    os.makedirs(os.path.join(directory, "gen-legacy"))
    index = tantivy.Index(schema, path=os.path.join(directory, "gen-legacy"))
    writer = index.writer(15_000_000, 1)
    for doc in docs:
        source = {"title": doc.title, "text": doc.text, "language": doc.language, "type": doc.type,
                  "visibility": doc.visibility, "category": doc.category, "tags": list(doc.tags)}
        document = tantivy.Document()
        document.add_unsigned("id", doc.id)
        document.add_unsigned("version", doc.version)
        for name in ("lang", "type", "visibility"):
            document.add_text(name, {"lang": doc.language, "type": doc.type, "visibility": doc.visibility}[name])
        document.add_text("title_t", " ".join(analysis.analyze(doc.language, doc.title)))
        document.add_text("body_t", " ".join(analysis.analyze(doc.language, doc.text)))
        document.add_bytes("source", json.dumps(source).encode())
        writer.add_document(document)
    writer.commit()
    writer.wait_merging_threads()
    with open(os.path.join(directory, "CURRENT"), "w") as stream:
        stream.write("gen-legacy")


DOCS = [
    IndexDoc(id=1, version=1, title="Reset a forgotten password", text="Choose Forgot password.", language="en",
             type="article", visibility="public"),
    IndexDoc(id=2, version=1, title="Password rules for agents", text="Internal password rules.", language="en",
             type="article", visibility="internal"),
    IndexDoc(id=3, version=1, title="Wachtwoord vergeten", text="Kies password vergeten.", language="nl",
             type="article", visibility="public"),
]


def search(backend, text, languages=("en",), visibilities=("public",)):
    results = backend.search(SearchQuery(text=text, languages=list(languages), visibilities=list(visibilities)))
    return [hit.id for hit in results.hits]


def test_a_generation_from_before_the_fields_per_language_is_still_searched(tmp_path):
    legacy_generation(str(tmp_path), DOCS)
    backend = embedded.EmbeddedBackend(str(tmp_path))
    assert search(backend, "password") == [1]  # the language filter keeps the Dutch one out
    assert search(backend, "password", visibilities=("public", "internal")) == [1, 2]
    assert search(backend, "password", languages=("nl",)) == [3]
    assert search(backend, "passwrd") == [1]  # typo tolerance works on the old fields too
    # Articles changed before the rebuild are written as that generation's fields want them.
    assert backend.upsert([IndexDoc(id=4, version=1, title="Your receipt", text="Receipts are PDFs.",
                                    language="en", type="article", visibility="public")]) == 1
    assert search(backend, "receipt") == [4]
    assert 4 in search(backend, "invoice")  # its synonym keys too

    rebuild = backend.rebuild()
    rebuild.add(DOCS + [IndexDoc(id=4, version=1, title="Your receipt", text="Receipts are PDFs.",
                                 language="en", type="article", visibility="public")])
    rebuild.swap()
    assert backend._fields(backend._current().searcher(), "en") == (embedded.LANGUAGE_FIELDS["en"], False)
    assert search(backend, "password") == [1]
    assert search(backend, "password", visibilities=("internal",)) == [2]
    assert search(backend, "password", languages=("nl", "en")) in ([1, 3], [3, 1])
