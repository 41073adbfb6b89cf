"""TLS for real: Dovecot with IMAPS and STARTTLS, aiosmtpd with STARTTLS and with implicit TLS, both
with AUTH, all with a certificate from a private CA made for the test. Certificates are verified by
default; the CA comes from ``HELPDESK_TLS_CA_FILE`` (config ``TLS_CA_FILE``) or a URL's ``cafile=``."""
import ssl
import uuid
from email.message import EmailMessage

import pytest

import mails
from servers import SmtpSink, running_dovecot, wait_for
from helpdesk_intake.imap import ImapMailbox
from helpdesk_intake.mailout import smtp_connect
from helpdesk_intake.settings import Settings, parse_mailbox_url, parse_smtp_url


@pytest.fixture(scope="module")
def tls_dovecot():
    with running_dovecot("intake-dovecot-tls-", tls=True) as server:
        yield server


@pytest.fixture(scope="module")
def certificates(tls_dovecot):
    return tls_dovecot.certificates


@pytest.fixture(scope="module", params=["starttls", "tls"])
def tls_sink(request, tmp_path_factory, certificates):
    sink = SmtpSink(tmp_path_factory.mktemp(f"smtp-{request.param}"), mode=request.param,
                    certificates=certificates).start()
    yield sink
    sink.stop()


def fetch_one(url):
    mailbox = ImapMailbox(parse_mailbox_url(url), timeout=10)
    try:
        return mailbox.fetch_unprocessed(10)
    finally:
        mailbox.close()


@pytest.mark.parametrize("how", ["imaps", "starttls"])
def test_imap_over_tls_with_a_private_ca(tls_dovecot, certificates, how):
    mailbox = tls_dovecot.mailbox()
    raw = mails.plain("eva@example.se", "Över TLS", "Hej!")
    mailbox.deliver(raw)
    url = (mailbox.tls_url(cafile=certificates.ca) if how == "imaps"
           else mailbox.url(starttls="true", cafile=certificates.ca))
    ((uid, fetched, _size, _headers_only),) = fetch_one(url)
    assert fetched.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")


@pytest.mark.parametrize("how", ["imaps", "starttls"])
def test_imap_certificates_are_verified_by_default(tls_dovecot, how):
    mailbox = tls_dovecot.mailbox()
    url = mailbox.tls_url() if how == "imaps" else mailbox.url(starttls="true")
    with pytest.raises(ssl.SSLCertVerificationError):
        fetch_one(url)
    # an operator who knowingly turns verification off still gets an encrypted connection
    assert fetch_one(mailbox.tls_url(tls_verify="false") if how == "imaps"
                     else mailbox.url(starttls="true", tls_verify="false")) == []


def test_the_ca_file_setting_applies_to_every_url_without_its_own(certificates, tmp_path):
    settings = Settings.from_config({
        "TLS_CA_FILE": certificates.ca, "SMTP_URL": "smtps://u:p@mail.example.com",
        "IMAP_URLS": f"imaps://a:b@imap.example.com/INBOX,imaps://c:d@other.example.com/INBOX?cafile={certificates.cert}"})
    assert [m.cafile for m in settings.mailboxes] == [certificates.ca, certificates.cert]
    assert settings.smtp.cafile == certificates.ca and settings.smtp.tls_verify
    with pytest.raises(ValueError, match="does not exist"):
        Settings.from_config({"TLS_CA_FILE": str(tmp_path / "missing.pem")})
    with pytest.raises(ValueError, match="unknown SMTP URL option"):
        parse_smtp_url("smtp://mail.example.com?startls=true")  # a typo must not silently mean "no TLS"


def letter(to):
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "support@helpdesk.test", to, "Över TLS"
    message.set_content("Hej Eva!")
    return message


def test_smtp_with_tls_and_auth(tls_sink, certificates):
    to = f"eva-{uuid.uuid4().hex[:6]}@example.se"
    client = smtp_connect(parse_smtp_url(tls_sink.url, cafile=certificates.ca))
    try:
        client.send_message(letter(to))
    finally:
        client.quit()
    (received,) = tls_sink.wait_for(to)
    assert received.envelope["login"] == "helpdesk" and received.envelope["tls"] is True
    assert received["Subject"] == "Över TLS"


def test_smtp_certificates_are_verified_by_default(tls_sink):
    with pytest.raises(ssl.SSLCertVerificationError):
        smtp_connect(parse_smtp_url(tls_sink.url))


def test_mail_in_over_imaps_and_acknowledged_over_smtp_tls(container_factory, intake_config, tickets_service,
                                                           tls_dovecot, certificates, tls_sink, wait_tickets):
    """The whole service with TLS on both sides and the CA from the TLS_CA_FILE setting."""
    from helpdesk_intake.service import IntakeService

    mailbox = tls_dovecot.mailbox()
    customer = f"tls-{uuid.uuid4().hex[:8]}@example.com"
    mailbox.deliver(mails.plain(customer, "Encrypted all the way", "Please help."))
    container = container_factory(IntakeService, {**intake_config, "IMAP_URLS": mailbox.tls_url(team="support"),
                                                  "SMTP_URL": tls_sink.url, "TLS_CA_FILE": certificates.ca})
    container.start()
    (ticket,) = wait_tickets(customer)
    (ack,) = tls_sink.wait_for(customer)
    assert ticket["number"] in ack["Subject"] and ack.envelope["tls"] is True
    wait_for(lambda: mailbox.counts() == (1, 0), what="the message to be marked seen")
