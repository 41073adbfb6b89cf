"""Mail to customers in English, Dutch and Swedish, chosen by the ticket's language.

An organisation overrides any of them with a file ``<TEMPLATES_DIR>/<language>/<kind>.txt`` whose first
line is ``Subject: ...`` and the rest the body; both use ``{number}``, ``{subject}``, ``{name}``,
``{body}``, ``{status}``, ``{support_name}``.
"""
import os
import string

from .quoting import REPLY_MARKER

BUILT_IN = {
    "en": {
        "acknowledgement": ("[{number}] {subject}",
                            "Hello {name},\n\nThank you for contacting us. Your request has been received and "
                            "given the number {number}. We will get back to you as soon as we can.\n\n"
                            "To add information, reply to this email and keep {number} in the subject.\n\n"
                            "{support_name}"),
        "reply": ("Re: [{number}] {subject}", "{body}\n\n--\n{support_name} · {number}"),
        "status_pending": ("[{number}] We need more information: {subject}",
                           "Hello {name},\n\nTo continue with your request {number} we need something from you. "
                           "Please reply to this email.\n\n{support_name}"),
        "status_resolved": ("[{number}] Resolved: {subject}",
                            "Hello {name},\n\nYour request {number} has been resolved. If the problem is not "
                            "solved, reply to this email and we will look at it again.\n\n{support_name}"),
        "status_other": ("[{number}] Status update: {subject}",
                         "Hello {name},\n\nThe status of your request {number} is now: {status}.\n\n{support_name}"),
    },
    "nl": {
        "acknowledgement": ("[{number}] {subject}",
                            "Beste {name},\n\nBedankt voor uw bericht. Uw verzoek is ontvangen en heeft nummer "
                            "{number} gekregen. We nemen zo snel mogelijk contact met u op.\n\n"
                            "Wilt u iets toevoegen? Beantwoord deze e-mail en laat {number} in het onderwerp staan.\n\n"
                            "{support_name}"),
        "reply": ("Re: [{number}] {subject}", "{body}\n\n--\n{support_name} · {number}"),
        "status_pending": ("[{number}] We hebben meer informatie nodig: {subject}",
                           "Beste {name},\n\nOm verder te kunnen met uw verzoek {number} hebben we iets van u "
                           "nodig. Beantwoord deze e-mail alstublieft.\n\n{support_name}"),
        "status_resolved": ("[{number}] Opgelost: {subject}",
                            "Beste {name},\n\nUw verzoek {number} is opgelost. Is het probleem niet verholpen? "
                            "Beantwoord dan deze e-mail en we kijken er opnieuw naar.\n\n{support_name}"),
        "status_other": ("[{number}] Statuswijziging: {subject}",
                         "Beste {name},\n\nDe status van uw verzoek {number} is nu: {status}.\n\n{support_name}"),
    },
    "sv": {
        "acknowledgement": ("[{number}] {subject}",
                            "Hej {name},\n\nTack för att du kontaktade oss. Ditt ärende har tagits emot och fått "
                            "nummer {number}. Vi återkommer så snart vi kan.\n\n"
                            "Vill du lägga till något? Svara på det här mejlet och behåll {number} i ämnesraden.\n\n"
                            "{support_name}"),
        "reply": ("Re: [{number}] {subject}", "{body}\n\n--\n{support_name} · {number}"),
        "status_pending": ("[{number}] Vi behöver mer information: {subject}",
                           "Hej {name},\n\nFör att gå vidare med ditt ärende {number} behöver vi något från dig. "
                           "Svara gärna på det här mejlet.\n\n{support_name}"),
        "status_resolved": ("[{number}] Löst: {subject}",
                            "Hej {name},\n\nDitt ärende {number} är löst. Om problemet kvarstår, svara på det här "
                            "mejlet så tittar vi på det igen.\n\n{support_name}"),
        "status_other": ("[{number}] Statusändring: {subject}",
                         "Hej {name},\n\nStatusen för ditt ärende {number} är nu: {status}.\n\n{support_name}"),
    },
}

FALLBACK_NAME = {"en": "customer", "nl": "klant", "sv": "kund"}


class _Lenient(string.Formatter):
    """Unknown placeholders in an organisation's template stay as written rather than failing."""

    def get_value(self, key, args, kwargs):
        return kwargs.get(key, "{" + str(key) + "}")


class _Placeholders(dict):
    """Template values; a name not among them formats as itself, as :class:`_Lenient` writes it."""

    def __missing__(self, key):
        return "{" + key + "}"


def _format(template, values):
    """``template`` filled in: ``str.format_map`` (a mail's two templates through ``string.Formatter``
    cost a sixth of recording a mail), :class:`_Lenient` for what it cannot read (a positional ``{0}``)."""
    try:
        return template.format_map(values)
    except (IndexError, KeyError, ValueError, AttributeError, TypeError):
        return _Lenient().format(template, **values)


def render(kind, language, values, templates_dir=None, default_language="en"):
    """``(subject, body)`` of template ``kind`` in ``language`` (falling back to the default)."""
    language = language if language in BUILT_IN else default_language
    subject, body = BUILT_IN[language][kind]
    if templates_dir:
        path = os.path.join(templates_dir, language, f"{kind}.txt")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as stream:
                first, _, rest = stream.read().partition("\n")
            if first.lower().startswith("subject:"):
                subject, body = first[8:].strip(), rest.lstrip("\n")
    values = _Placeholders(values)
    values["name"] = values.get("name") or FALLBACK_NAME[language]
    return " ".join(_format(subject, values).split()), _format(body, values)


REPLY_HEADER = REPLY_MARKER
