"""Hostile input is bounded: plain functions, no servers.

Each input here is big enough that the code before the fix (quadratic, or backtracking) would run for
far longer than the per-test timeout; the tests assert the results, never timings."""
import base64

import pytest

import mails
from helpdesk_intake.domain import authresults, mime
from helpdesk_intake.domain.htmltext import MAX_DEPTH, html_to_text
from helpdesk_intake.domain.quoting import split_reply

pytestmark = pytest.mark.timeout(60)


def test_a_long_run_of_quoted_lines_not_at_the_end_is_split_in_linear_time():
    # 200,000 quoted lines interleaved with blank lines, then a line of new text: no quote runs to the end,
    # so nothing is split off. The old check rescanned to the end for every quoted line (~10^10 steps).
    lines = ["New text on top."]
    for n in range(200_000):
        lines += [f"> quoted line {n}", ""]
    lines.append("And a last word below the quote.")
    text = "\n".join(lines)
    assert split_reply(text) == (text, "")


def test_a_long_quote_that_runs_to_the_end_is_the_quoted_part():
    quote = "\n".join(f"> line {n}" + ("\n" if n % 3 == 0 else "") for n in range(200_000))
    new, quoted = split_reply("Thanks, that fixed it.\n\n" + quote)
    assert new == "Thanks, that fixed it." and quoted == quote


def test_a_megabyte_line_is_not_fed_whole_to_the_patterns():
    line = "On " + "x" * 2_000_000 + " wrote:"
    new, quoted = split_reply("Hello\n" + line + "\n> old")
    assert new == "Hello\n" + line and quoted == "> old"  # too long to be an attribution; the quote still splits


def test_reply_prefixes_and_names_with_long_runs_of_spaces_do_not_backtrack():
    subject = "Re" + " " * 200_000 + "x"
    assert mime.strip_reply_prefixes(subject) == subject
    assert mime.strip_reply_prefixes("Re: [HD-000001]  AW :SV[2]: Printer") == "[HD-000001]  AW :SV[2]: Printer"
    assert mime._NAMED_ADDRESS.fullmatch("a" + " " * 200_000 + "b@example.com") is None
    assert mime._address_pairs('  "Ann  Example"  <ann@example.com> ') == [("Ann  Example", "ann@example.com")]
    assert mime._address_pairs("Ann \t Example <ann@example.com>") == [("Ann Example", "ann@example.com")]


def test_hostile_headers_are_cut_before_the_decoders_see_them():
    subject = "=?utf-8?q?" * 300_000  # the stdlib's encoded-word pattern rescans the line from each "=?"
    raw = (f"From: ann@example.com\r\nSubject: {subject}\r\nReferences: {'<a@b> ' * 200_000}\r\n"
           f"Message-ID: <m@x>\r\n\r\nHello\r\n").encode()
    mail = mime.parse(raw)
    assert mail.sender_email == "ann@example.com" and len(mail.subject) <= mime.MAX_TEXT_HEADER
    assert 0 < len(mail.references) <= mime.MAX_REFERENCES_HEADER // 6 and mail.new_text == "Hello"


def test_blockquotes_nested_thousands_deep_are_indented_at_most_max_depth():
    html = "".join(f"<blockquote>level {n}" for n in range(5_000)) + "</blockquote>" * 5_000
    text = html_to_text(html)
    lines = text.split("\n")
    levels = [line for line in lines if "level" in line]
    assert len(levels) == 5_000 and levels[0] == "> level 0"
    assert max(len(line) for line in lines) <= 2 * MAX_DEPTH + len("level 4999")
    assert levels[-1] == "> " * MAX_DEPTH + "level 4999"


def test_many_links_in_one_line_are_converted_in_linear_time():
    html = "<p>" + "".join(f'<a href="https://example.com/{n}">link {n}</a> ' for n in range(60_000)) + "</p>"
    text = html_to_text(html, max_chars=10_000_000)  # 2.3 million characters on one line
    assert text.startswith("link 0 (https://example.com/0) link 1 (https://example.com/1)")
    assert text.endswith("link 59999 (https://example.com/59999)")


def test_html_text_stops_at_its_cap():
    html = "<p>" + "word " * 1_000_000 + "</p><p>after</p>"
    text = html_to_text(html, max_chars=50_000)
    assert len(text) <= 50_000 + 10 and text.endswith("[…]") and "after" not in text


def test_a_ticket_keeps_max_text_characters_and_the_whole_text_goes_along_as_a_file():
    body = "".join(f"line {n}\n" for n in range(100_000))
    mail = mime.parse(mails.plain("ann@example.com", "Long", body), max_text=10_000)
    assert len(mail.text) < 10_100 and mail.text.startswith("line 0\nline 1\n")
    assert "more characters in full-text.txt" in mail.text
    (full,) = [a for a in mail.attachments if a.filename == "full-text.txt"]
    assert full.data.decode() == body.strip() and full.content_type == "text/plain"


def test_reply_to_is_where_answers_go_never_who_wrote():
    raw = mails.plain("Mallory <mallory@evil.example>", "Re: [HD-000001] Invoice", "Send it to me.",
                      extra={"Reply-To": "Customer <customer@example.com>"})
    mail = mime.parse(raw)
    assert (mail.sender_email, mail.sender_name) == ("mallory@evil.example", "Mallory")
    assert mail.reply_to == "customer@example.com"


def test_authentication_results_of_our_own_server_decide_who_is_vouched_for():
    ours = "mx.helpdesk.test; spf=fail smtp.mailfrom=evil.example; dkim=none; dmarc=fail header.from=example.com"
    forged = "mx.helpdesk.test; dmarc=pass header.from=example.com"  # came with the message: below ours
    assert not authresults.verdict("ann@example.com", [ours, forged], "mx.helpdesk.test").trusted
    assert authresults.verdict("ann@example.com", [forged], "mx.helpdesk.test").trusted
    # another server's verdict is not ours; no header at all vouches for nobody
    other = "mx.elsewhere.example; dmarc=pass header.from=example.com"
    assert not authresults.verdict("ann@example.com", [other], "mx.helpdesk.test").trusted
    assert authresults.verdict("ann@example.com", [other], "").trusted  # no id set: the topmost counts
    assert not authresults.verdict("ann@example.com", [], "").trusted
    # DKIM or SPF only when aligned with the From domain (a subdomain aligns, a bare TLD never)
    dkim = "mx.helpdesk.test; dkim=fail header.d=example.com; dkim=pass (good) header.d=mail.example.com"
    assert authresults.verdict("ann@example.com", [dkim], "mx.helpdesk.test").trusted
    assert not authresults.verdict("ann@example.com", ["mx.helpdesk.test; dkim=pass header.d=evil.example"],
                                   "mx.helpdesk.test").trusted
    assert not authresults.verdict("ann@example.com", ["mx.helpdesk.test; dkim=pass header.d=com"],
                                   "mx.helpdesk.test").trusted
    assert authresults.verdict("ann@example.com", ["mx.helpdesk.test; spf=pass smtp.mailfrom=bounce@example.com"],
                               "mx.helpdesk.test").trusted
    assert not authresults.verdict("ann@example.com", ["mx.helpdesk.test; spf=pass smtp.mailfrom=x@evil.example"],
                                   "mx.helpdesk.test").trusted
    # dmarc=pass for another From domain than this mail's
    assert not authresults.verdict("ann@example.com", ["mx.helpdesk.test; dmarc=pass header.from=evil.example"],
                                   "mx.helpdesk.test").trusted


def test_the_authentication_results_headers_are_kept_topmost_first():
    raw = mails.plain("ann@example.com", "Hi", "Hello", extra={
        "Authentication-Results": "mx.helpdesk.test; dmarc=pass header.from=example.com"})
    raw = b"Authentication-Results: mx.helpdesk.test; dmarc=fail header.from=example.com\r\n" + raw
    mail = mime.parse(raw)
    assert [value.split(";")[1].strip() for value in mail.auth_results] == ["dmarc=fail header.from=example.com",
                                                                            "dmarc=pass header.from=example.com"]
    assert not authresults.verdict(mail.sender_email, mail.auth_results, "mx.helpdesk.test").trusted


def test_a_deeply_nested_mime_structure_is_refused_not_crashed_on():
    from helpdesk_intake.domain.parse import parse_one

    depth = 3_000
    head = "".join(f'Content-Type: multipart/mixed; boundary="b{n}"\r\n\r\n--b{n}\r\n' for n in range(depth))
    raw = ("From: ann@example.com\r\nSubject: deep\r\n" + head + "Content-Type: text/plain\r\n\r\nhi\r\n").encode()
    result = parse_one(raw, 100_000)
    assert isinstance(result, (mime.ParsedMail, mime.Unparseable))


def test_attachment_data_stays_intact_in_a_large_message():
    data = bytes(range(256)) * 4_000
    raw = mails.with_attachment("ann@example.com", "Scan", "See attached.", "<p>See attached.</p>", "scan.bin",
                                data, content_type="application/octet-stream")
    mail = mime.parse(raw)
    assert [a.data for a in mail.attachments if a.filename == "scan.bin"] == [data]
    assert base64.b64encode(data)  # (the fixture round-trips through base64 in the mail)


def test_the_parse_worker_stops_a_hung_parse_and_goes_on_but_never_swallows_its_callers_timeout(monkeypatch):
    import eventlet

    from helpdesk_intake.domain.parse import ParseFailure
    from helpdesk_intake.parse_worker import ParseWorker

    monkeypatch.setenv("HELPDESK_FAILPOINT", "intake.parse:hang:POISON-unit")
    worker = ParseWorker(timeout=1, max_text=10_000)
    try:
        raws = [mails.plain("ann@example.com", f"Mail {n}", "Hello") for n in range(3)]
        raws.insert(1, mails.plain("bo@example.com", "POISON-unit", "hangs"))
        results = worker.parse(raws)
        assert [type(r).__name__ for r in results] == ["ParsedMail", "ParseFailure", "ParsedMail", "ParsedMail"]
        assert results[1].reason == "parsing took over 1s (stopped)" and isinstance(results[1], ParseFailure)
        assert [r.subject for r in results if not isinstance(r, ParseFailure)] == ["Mail 0", "Mail 1", "Mail 2"]
        worker.timeout = 30
        with pytest.raises(eventlet.Timeout):  # the poll's own timeout goes through, and the hung child dies
            with eventlet.Timeout(0.5):
                worker.parse(raws[1:2])
        assert worker.process is None
    finally:
        worker.stop()


def test_only_the_first_max_parts_mime_parts_are_read():
    parts = "".join(f"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; "
                    f"filename=\"f{n}.bin\"\r\n\r\nx{n}\r\n" for n in range(mime.MAX_PARTS + 500))
    raw = ("From: ann@example.com\r\nSubject: parts\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
           "--b\r\nContent-Type: text/plain\r\n\r\nSee the files.\r\n" + parts + "--b--\r\n").encode()
    mail = mime.parse(raw)
    assert len(mail.attachments) == mime.MAX_PARTS - 1  # the text is the first part
    assert mail.new_text == f"See the files.\n\n[… 501 more MIME parts were not read (over {mime.MAX_PARTS})]"
