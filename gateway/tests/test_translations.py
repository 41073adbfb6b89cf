"""The UI's message catalogues: nl and sv translate every message the code and templates use, and the
committed .mo files (what the gateway loads; no build step) match their .po files."""
import io
import os
import subprocess
import sys

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

GATEWAY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRANSLATIONS = os.path.join(GATEWAY, "helpdesk_gateway", "translations")


def catalogue(language, kind="po"):
    path = os.path.join(TRANSLATIONS, language, "LC_MESSAGES", f"messages.{kind}")
    with open(path, "rb") as stream:
        return read_po(stream, locale=language) if kind == "po" else read_mo(stream)


def extracted(tmp_path):
    """The messages the code and templates use now (as ``make translations`` extracts them)."""
    target = tmp_path / "messages.pot"
    subprocess.run([os.path.join(os.path.dirname(sys.executable), "pybabel"), "-q", "extract", "-F", "babel.cfg",
                    "-k", "_l", "-o", str(target), "."], cwd=GATEWAY, check=True, capture_output=True)
    with open(target, "rb") as stream:
        return {message.id for message in read_po(stream) if message.id}


@pytest.mark.parametrize("language", ["nl", "sv"])
def test_every_message_has_a_translation(language, tmp_path):
    translated = {m.id: m.string for m in catalogue(language) if m.id}
    missing = sorted(str(i) for i in extracted(tmp_path) if not translated.get(i))
    assert missing == [], f"untranslated in {language}: run `make translations` and translate them"
    assert not [m.id for m in catalogue(language) if m.id and m.fuzzy], "fuzzy translations are not shown"


@pytest.mark.parametrize("language", ["nl", "sv"])
def test_the_compiled_catalogue_matches_the_source(language):
    source = {m.id: m.string for m in catalogue(language) if m.id}
    compiled = {m.id: m.string for m in catalogue(language, "mo") if m.id}
    assert compiled == source, "run `make translations` to compile the .mo files"
