"""Real-world MIME into ticket material: plain functions, no servers."""
import pytest

import mails
from helpdesk_intake.domain import mime
from helpdesk_intake.domain.htmltext import html_to_text
from helpdesk_intake.domain.quoting import split_reply
from helpdesk_intake.settings import Settings, parse_mailbox_url, parse_smtp_url


def test_plain_text_utf8_with_swedish_name_in_an_encoded_word():
    raw = mails.plain("=?UTF-8?Q?Eva_=C3=85ngstr=C3=B6m?= <Eva@Example.se>",
                      "=?UTF-8?B?U2tyaXZhcmVuIGZ1bmdlcmFyIGludGUgaSBydW0gw6Rs?=", "Hej, skrivaren på plan 3 är trasig.")
    mail = mime.parse(raw)
    assert mail.sender_name == "Eva Ångström" and mail.sender_email == "eva@example.se"
    assert mail.subject == "Skrivaren fungerar inte i rum äl"
    assert mail.new_text == "Hej, skrivaren på plan 3 är trasig." and mail.quoted_text == ""
    assert mail.automatic is None and mail.attachments == []


def test_iso_8859_1_subject_dutch_name_and_latin1_body():
    raw = mails.plain("=?ISO-8859-1?Q?Ren=E9e_van_der_Bl=F6k?= <renee@example.nl>",
                      "=?iso-8859-1?q?Pr=E9sentatie_werkt_niet_na_update_=E9=E9n?=", "Geachte heer, één probleem.",
                      charset="iso-8859-1")
    mail = mime.parse(raw)
    assert mail.sender_name == "Renée van der Blök"
    assert mail.subject == "Présentatie werkt niet na update één"
    assert mail.text == "Geachte heer, één probleem."


def test_raw_8bit_headers_and_lying_charset_are_decoded():
    raw = ("From: Jöns Ölund <jons@example.se>\r\nSubject: Ärende om fakturan\r\nMessage-ID: <x1@y>\r\n"
           "Content-Type: text/plain; charset=us-ascii\r\n\r\nFakturan är fel.\r\n").encode("utf-8")
    mail = mime.parse(raw)
    assert mail.sender_name == "Jöns Ölund" and mail.subject == "Ärende om fakturan"
    assert mail.text == "Fakturan är fel."


def test_nul_characters_in_headers_and_body_are_dropped():
    """PostgreSQL stores no NUL: a mail carrying some (a broken client, a crafted one) must still land."""
    raw = (b"From: Nul\x00 Sender <nul@example.org>\r\nSubject: =?UTF-8?Q?a=00b?= c\x00d\r\nMessage-ID: <n1@y>\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n\r\nBody\x00 with NUL.\r\n")
    mail = mime.parse(raw)
    assert mail.subject == "ab cd" and mail.text == "Body with NUL."
    assert "\x00" not in (mail.sender_name or "")


def test_html_only_becomes_clean_text_and_keeps_the_html():
    html = ("<html><head><style>p{color:red}</style></head><body><p>Hello&nbsp;team,</p><p>The <b>VPN</b> "
            "drops.<br>See <a href='https://status.example/vpn'>status</a>.</p><ul><li>Laptop</li><li>Phone</li></ul>"
            "<div class='gmail_quote'>On Mon, 1 Jan 2026 at 10:00, Support wrote:<blockquote>old text</blockquote>"
            "</div><script>alert(1)</script></body></html>")
    mail = mime.parse(mails.html_only("ann@example.com", "VPN", html))
    assert mail.html == html + "\r\n"  # the part exactly as sent, its line end included
    assert mail.new_text == ("Hello team,\n\nThe VPN drops.\nSee status (https://status.example/vpn).\n\n"
                             "- Laptop\n- Phone")
    assert "old text" in mail.quoted_text and "alert" not in mail.text and "color" not in mail.text


def test_multipart_with_attachment_and_inline_image():
    raw = mails.with_attachment("ann@example.com", "Invoice", "See attached.\n", "<p>See <img src='cid:logo@client' "
                                "alt='logo'> attached.</p>", "faktura å.pdf", b"%PDF-1.4 test",
                                inline_image=b"\x89PNG fake")
    mail = mime.parse(raw)
    assert mail.text == "See attached."  # the plain alternative is preferred
    assert "<img" in mail.html
    files = {a.filename: a for a in mail.attachments}
    assert files["faktura å.pdf"].data == b"%PDF-1.4 test" and not files["faktura å.pdf"].inline
    inline = [a for a in mail.attachments if a.inline]
    assert len(inline) == 1 and inline[0].content_id == "logo@client" and inline[0].content_type == "image/png"


@pytest.mark.parametrize("text,new", [
    ("Thanks, that worked.\n\nOn Tue, 3 Feb 2026 at 09:12, Helpdesk <support@x.test> wrote:\n> Try again\n",
     "Thanks, that worked."),
    ("Dank je!\n\nOp di 3 feb. 2026 om 09:12 schreef Helpdesk <support@x.test>:\n> Probeer opnieuw\n",
     "Dank je!"),
    ("Tack!\n\nDen tis 3 feb. 2026 kl 09:12 skrev Helpdesk <support@x.test>:\n> Försök igen\n", "Tack!"),
    ("Still broken.\n\n-----Original Message-----\nFrom: Helpdesk\nSent: Monday\n\nTry again", "Still broken."),
    ("Yes.\n\n________________________________\nVan: Helpdesk\nVerzonden: maandag\n", "Yes."),
    ("Just text\n> not a quote at the end\nmore text", "Just text\n> not a quote at the end\nmore text"),
])
def test_quoted_reply_text_is_separated(text, new):
    got_new, quoted = split_reply(text)
    assert got_new == new
    assert (quoted != "") == (new != text.strip())


@pytest.mark.parametrize("extra,reason", [
    ({"Auto-Submitted": "auto-replied"}, "auto_submitted:auto-replied"),
    ({"Precedence": "bulk"}, "precedence:bulk"),
    ({"X-Autoreply": "yes"}, "x_autoreply"),
    ({"List-Id": "<news.example.com>"}, "bulk:list"),
    ({"Auto-Submitted": "no"}, None),
])
def test_automatic_mail_is_recognised(extra, reason):
    mail = mime.parse(mails.plain("ann@example.com", "Out of office", "I am away.", extra=extra))
    assert mail.automatic == reason


def test_a_bounce_is_recognised():
    mail = mime.parse(mails.bounce("gone@example.com", "[HD-000001] Hello"))
    assert mail.automatic == "report:delivery-status"


@pytest.mark.parametrize("raw,reason", [
    (b"", "empty message"),
    (b"\x00\x01\x02 not a mail at all", "no headers"),
    (b"Subject: hi\r\n\r\nno sender\r\n", "no usable sender address"),
    (b"From: not an address\r\nSubject: hi\r\n\r\nbody\r\n", "no usable sender address"),
])
def test_unparseable_messages_are_refused_with_a_reason(raw, reason):
    with pytest.raises(mime.Unparseable) as caught:
        mime.parse(raw)
    assert reason in str(caught.value)


def test_content_hash_ignores_transport_headers_but_not_content():
    a = mails.plain("ann@example.com", "Hi", "Body", message_id="a@x")
    b = b"Received: from mx by mx\r\nDelivered-To: support@x\r\n" + a.replace(b"a@x", b"b@x")
    c = mails.plain("ann@example.com", "Hi", "Other body", message_id="a@x")
    assert mime.parse(a).content_hash == mime.parse(b).content_hash != mime.parse(c).content_hash


def test_thread_headers_are_read():
    raw = mails.plain("ann@example.com", "Re: hi", "ok", extra={
        "In-Reply-To": "<HD-000001.abc@helpdesk.test>", "References": "<first@x> <HD-000001.abc@helpdesk.test>"})
    mail = mime.parse(raw)
    assert mail.in_reply_to == ["HD-000001.abc@helpdesk.test"]
    assert mail.references == ["first@x", "HD-000001.abc@helpdesk.test"]


def test_mailbox_and_smtp_urls():
    box = parse_mailbox_url("imaps://help%40acme.se:p%40ss@imap.acme.se/Support%20In?team=network&language=sv"
                            "&processed=Done")
    assert (box.scheme, box.host, box.port, box.user, box.password, box.folder, box.team, box.language,
            box.processed_folder) == ("imaps", "imap.acme.se", 993, "help@acme.se", "p@ss", "Support In", "network",
                                      "sv", "Done")
    assert "p@ss" not in box.name
    with pytest.raises(ValueError):
        parse_mailbox_url("pop3://a:b@host/")
    smtp = parse_smtp_url("smtp://u:p@mail.acme.se:587?starttls=true")
    assert (smtp.host, smtp.port, smtp.starttls, smtp.user) == ("mail.acme.se", 587, True, "u")
    assert parse_smtp_url("smtps://mail.acme.se").port == 465


def test_ticket_number_pattern_is_configurable():
    default = Settings()
    assert default.ticket_regex.search("Re: [HD-000123] printer").group(1) == "HD-000123"
    assert default.ticket_regex.search("ISO-8859-1 and XHD-000123") is None
    custom = Settings(ticket_pattern=r"T\d{4}-\d{5}")
    assert custom.ticket_regex.search("SV: T2026-00042 skrivare").group(1) == "T2026-00042"


def test_html_tables_and_entities():
    assert html_to_text("<table><tr><td>a</td><td>b &amp; c</td></tr><tr><td>d</td></tr></table>") == "a | b & c\nd"


def _address_forms():
    """Addresses as clients write them, and the odd ones: every combination of a few names, local parts and
    domains in several forms (seeded, so a failure repeats)."""
    import random
    names = ["", "Name", "Jöns", "A. B.", "O'Brien", "x-y", "Mr  Smith", '"Q"', '"Smith, J"', "=?utf-8?q?x?=", "a+b",
             "(c)", '"a\\"b"']
    locals_ = ["a", "a.b", "a+b", "a..b", ".a", "a.", "A_b", "a'b", "x=y", '"q q"']
    domains = ["b.c", "b..c", "b", "B.C", ".b.c", "b.c.", "b-c.d", "[1.2.3.4]"]
    forms = ["{a}", "<{a}>", "{n} <{a}>", "{n}<{a}>", " {n}\t<{a}> ", "{n} {a}", "<{a}", "{a}>", "{n} <{a}>, {a}",
             "{a} ({n})", "g: {a};"]
    rng = random.Random(5)
    return [rng.choice(forms).format(n=rng.choice(names), a=rng.choice(locals_) + "@" + rng.choice(domains))
            for _ in range(3000)]


def test_sender_addresses_read_as_the_standard_library_reads_them():
    import email.utils
    for value in _address_forms():
        assert mime._address_pairs(value) == email.utils.getaddresses([value]), value


def test_an_attribution_is_found_with_its_word_in_any_case():
    text = "Fine now.\n\nLE 3 MARS, MARIE A ÉCRIT :\n> old"
    assert split_reply(text) == ("Fine now.", "LE 3 MARS, MARIE A ÉCRIT :\n> old")


@pytest.mark.parametrize("url, refused", [
    ("imap://user:pw@mail.example.com/INBOX", True),                   # a password over the network in clear
    ("imap://user:pw@mail.example.com/INBOX?starttls=true", False),
    ("imaps://user:pw@mail.example.com/INBOX", False),
    ("imap://user:pw@127.0.0.1:1143/INBOX", False),                     # never leaves this machine
    ("imap://user:pw@mail.example.com/INBOX?plaintext=true", False),   # said explicitly
])
def test_a_mailbox_password_is_never_sent_in_clear_unless_allowed(url, refused):
    if refused:
        with pytest.raises(ValueError, match="in clear"):
            parse_mailbox_url(url)
    else:
        assert parse_mailbox_url(url).password == "pw"


@pytest.mark.parametrize("url, refused", [
    ("smtp://user:pw@smtp.example.com:587", True),
    ("smtp://user:pw@smtp.example.com:587?starttls=true", False),
    ("smtps://user:pw@smtp.example.com", False),
    ("smtp://smtp.example.com:25", False),                             # no password to send
    ("smtp://user:pw@localhost:2525", False),
    ("smtp://user:pw@smtp.example.com:587?plaintext=true", False),
])
def test_an_smtp_password_is_never_sent_in_clear_unless_allowed(url, refused):
    if refused:
        with pytest.raises(ValueError, match="in clear"):
            parse_smtp_url(url)
    else:
        assert parse_smtp_url(url).host
