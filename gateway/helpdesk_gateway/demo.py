"""A small, believable support organisation, put into a running platform through its own REST API.

``helpdesk demo`` (``make demo``) adds two teams with an escalation path, five agents with skills and
languages, routing rules, thirty knowledge-base articles (ten in English with their Dutch and Swedish
translations) and sixteen tickets on several channels and in several states. Everything is found again
by a key of its own (a team's name, an agent's email, a rule's name, an article's ``external_id``, a
ticket's ``Idempotency-Key``), so a second run adds nothing. It never runs by itself.
"""
import json
import urllib.error
import urllib.request

TEAMS = [
    {"name": "specialists", "tier": 2, "strategy": "least_loaded",
     "description": "Second line: networks, security and hardware that the service desk could not solve."},
    {"name": "service-desk", "tier": 1, "strategy": "skills_and_load", "escalates_to": "specialists",
     "description": "First line: every request starts here."},
]

AGENTS = [
    {"name": "Ana Lindqvist", "email": "ana@demo.example", "languages": ["sv", "en"],
     "skills": {"billing": 4, "accounts": 3}, "teams": ["service-desk"], "tier": 1, "capacity": 6},
    {"name": "Pieter de Vries", "email": "pieter@demo.example", "languages": ["nl", "en"],
     "skills": {"network": 3, "billing": 2}, "teams": ["service-desk"], "tier": 1, "capacity": 6},
    {"name": "Sam Taylor", "email": "sam@demo.example", "languages": ["en"],
     "skills": {"accounts": 4, "hardware": 3}, "teams": ["service-desk"], "tier": 1, "capacity": 5},
    {"name": "Erik Nilsson", "email": "erik@demo.example", "languages": ["sv", "en"],
     "skills": {"network": 5, "security": 4}, "teams": ["specialists"], "tier": 2, "capacity": 4},
    {"name": "Noor Jansen", "email": "noor@demo.example", "languages": ["nl", "en"],
     "skills": {"hardware": 5, "security": 3}, "teams": ["specialists"], "tier": 2, "capacity": 4},
]

RULES = [
    {"name": "Security incidents", "conditions": {"words": ["phishing", "hacked", "virus", "malware", "breach"]},
     "actions": {"team": "specialists", "tier": 2, "priority": "urgent", "required_skills": {"security": 3}}},
    {"name": "Network and VPN", "conditions": {"words": ["vpn", "network", "wifi", "netwerk", "nätverk"]},
     "actions": {"team": "service-desk", "required_skills": {"network": 2}}},
    {"name": "Billing", "conditions": {"words": ["invoice", "refund", "billing", "factuur", "faktura", "fakturan"]},
     "actions": {"team": "service-desk", "required_skills": {"billing": 2}}},
    {"name": "Everything else", "conditions": {}, "actions": {"team": "service-desk"}},
]

# (key, category, {language: (title, body)}): English first, the others its translations.
ARTICLES = [
    ("reset-password", "accounts", {
        "en": ("Reset your password", "Open **Sign in**, choose *Forgot password* and follow the link we mail you "
               "within a minute. The link works once and for one hour."),
        "nl": ("Je wachtwoord opnieuw instellen", "Open **Aanmelden**, kies *Wachtwoord vergeten* en volg de link "
               "die we je binnen een minuut mailen. De link werkt één keer en één uur lang."),
        "sv": ("Återställ ditt lösenord", "Öppna **Logga in**, välj *Glömt lösenord* och följ länken vi mejlar dig "
               "inom en minut. Länken fungerar en gång och i en timme.")}),
    ("vpn-setup", "network", {
        "en": ("Set up the VPN", "Install the VPN client from the software centre, sign in with your work account "
               "and choose the *Office* profile. If the connection drops every few minutes, update the client."),
        "nl": ("De VPN instellen", "Installeer de VPN-client uit het softwarecentrum, meld je aan met je werkaccount "
               "en kies het profiel *Kantoor*. Valt de verbinding steeds weg, werk dan de client bij."),
        "sv": ("Konfigurera VPN", "Installera VPN-klienten från programcentret, logga in med ditt jobbkonto och välj "
               "profilen *Kontor*. Om anslutningen bryts med några minuters mellanrum, uppdatera klienten.")}),
    ("invoice-copy", "billing", {
        "en": ("Get a copy of an invoice", "Every invoice is under **Account → Invoices** as a PDF. Older than two "
               "years? Ask us and we send it within a working day."),
        "nl": ("Een kopie van een factuur", "Elke factuur staat als pdf onder **Account → Facturen**. Ouder dan twee "
               "jaar? Vraag het ons, we sturen hem binnen een werkdag."),
        "sv": ("Kopia av en faktura", "Varje faktura finns som pdf under **Konto → Fakturor**. Äldre än två år? Fråga "
               "oss så skickar vi den inom en arbetsdag.")}),
    ("refund", "billing", {
        "en": ("Ask for a refund", "Refunds go back to the card you paid with, within 10 working days of our "
               "approval. Tell us the invoice number and the reason."),
        "nl": ("Geld terugvragen", "Terugbetalingen gaan naar de kaart waarmee je betaalde, binnen 10 werkdagen na "
               "onze goedkeuring. Noem het factuurnummer en de reden."),
        "sv": ("Begär återbetalning", "Återbetalningar går tillbaka till kortet du betalade med, inom 10 arbetsdagar "
               "efter vårt godkännande. Ange fakturanumret och orsaken.")}),
    ("wifi", "network", {
        "en": ("Connect to the office wifi", "Choose the network *Office*, sign in with your work account. Guests "
               "use *Office-Guest* with the code at the reception."),
        "nl": ("Verbinden met de wifi op kantoor", "Kies het netwerk *Office* en meld je aan met je werkaccount. "
               "Gasten gebruiken *Office-Guest* met de code van de receptie."),
        "sv": ("Anslut till kontorets wifi", "Välj nätverket *Office* och logga in med ditt jobbkonto. Gäster "
               "använder *Office-Guest* med koden från receptionen.")}),
    ("printer", "hardware", {
        "en": ("The printer does not print", "Check that it is on the office network, then remove and add it "
               "again under **Settings → Printers**. Paper jams: open the front panel and pull gently."),
        "nl": ("De printer print niet", "Controleer of hij op het kantoornetwerk zit, verwijder hem en voeg hem "
               "opnieuw toe onder **Instellingen → Printers**. Papierstoring: open het voorpaneel en trek zacht."),
        "sv": ("Skrivaren skriver inte ut", "Kontrollera att den är på kontorsnätverket, ta bort den och lägg till "
               "den igen under **Inställningar → Skrivare**. Pappersstopp: öppna frontluckan och dra försiktigt.")}),
    ("two-factor", "accounts", {
        "en": ("Turn on two-step sign-in", "Under **Account → Security** choose *Two-step sign-in* and scan the code "
               "with an authenticator app. Keep the recovery codes somewhere safe."),
        "nl": ("Tweestapsaanmelding aanzetten", "Kies onder **Account → Beveiliging** *Tweestapsaanmelding* en scan "
               "de code met een authenticator-app. Bewaar de herstelcodes op een veilige plek."),
        "sv": ("Aktivera tvåstegsinloggning", "Välj *Tvåstegsinloggning* under **Konto → Säkerhet** och skanna koden "
               "med en autentiseringsapp. Spara återställningskoderna på ett säkert ställe.")}),
    ("phishing", "security", {
        "en": ("Report a phishing mail", "Do not click links in it. Forward it as an attachment to security@ and "
               "delete it. If you entered your password, change it now and tell us."),
        "nl": ("Een phishingmail melden", "Klik niet op de links. Stuur hem als bijlage door naar security@ en "
               "verwijder hem. Heb je je wachtwoord ingevuld, wijzig het nu en laat het ons weten."),
        "sv": ("Rapportera ett nätfiskemejl", "Klicka inte på länkarna. Vidarebefordra det som bilaga till security@ "
               "och radera det. Om du angav ditt lösenord, byt det nu och meddela oss.")}),
    ("mail-on-phone", "accounts", {
        "en": ("Read work mail on your phone", "Install the mail app, add your work account and accept the device "
               "policy (a screen lock is required)."),
        "nl": ("Werkmail op je telefoon", "Installeer de mail-app, voeg je werkaccount toe en accepteer het "
               "apparaatbeleid (een schermvergrendeling is verplicht)."),
        "sv": ("Jobbmejl i telefonen", "Installera e-postappen, lägg till ditt jobbkonto och godkänn enhetspolicyn "
               "(skärmlås krävs).")}),
    ("laptop-replacement", "hardware", {
        "en": ("Replace a broken laptop", "Open a request with the serial number. We lend you a laptop the same day; "
               "your files come back from the backup."),
        "nl": ("Een kapotte laptop vervangen", "Dien een verzoek in met het serienummer. Je krijgt dezelfde dag een "
               "leenlaptop; je bestanden komen terug uit de back-up."),
        "sv": ("Byt en trasig bärbar dator", "Skicka en förfrågan med serienumret. Du får en lånedator samma dag; "
               "dina filer återställs från säkerhetskopian.")}),
]

# (key, channel, language, priority, subject, description, requester, status to move it to)
TICKETS = [
    ("vpn-drops", "email", "en", "high", "VPN drops every few minutes",
     "Since Monday the VPN disconnects every five minutes.", ("Eva Ångström", "eva@customer.example"), "in_progress"),
    ("invoice-twice", "web", "nl", "normal", "Factuur twee keer betaald",
     "Ik heb factuur 2026-114 per ongeluk twee keer betaald.", ("Joris Bakker", "joris@klant.example"), "pending"),
    ("faktura-fel", "email", "sv", "normal", "Fel belopp på fakturan",
     "Fakturan för november har fel belopp.", ("Karin Berg", "karin@kund.example"), None),
    ("phishing-mail", "email", "en", "normal", "I clicked a phishing link",
     "I got a mail that looked like ours and typed my password. Am I hacked?", ("Liam Brown", "liam@customer.example"),
     "in_progress"),
    ("printer-jam", "phone", "en", "low", "Printer on floor 2 jams",
     "The big printer jams on every second page.", ("Mia Clark", "mia@customer.example"), "resolved"),
    ("wifi-guest", "chat", "nl", "normal", "Gastnetwerk werkt niet",
     "Onze bezoekers krijgen geen verbinding met het wifi gastnetwerk.", ("Sanne de Boer", "sanne@klant.example"),
     None),
    ("password-locked", "web", "sv", "high", "Låst ute från mitt konto",
     "Jag har glömt lösenordet och kontot är låst.", ("Olle Svensson", "olle@kund.example"), "resolved"),
    ("laptop-broken", "api", "en", "high", "Laptop does not start",
     "My laptop shows a black screen after the update.", ("Noah Davis", "noah@customer.example"), None),
    ("refund-request", "email", "en", "normal", "Refund for a cancelled order",
     "Please refund invoice 2026-201; the order was cancelled.", ("Emma Wilson", "emma@customer.example"), "closed"),
    ("mail-phone", "social", "en", "low", "Work mail on my new phone",
     "How do I get work mail on my new phone?", ("Olivia King", "olivia@customer.example"), None),
    ("netwerk-traag", "phone", "nl", "high", "Netwerk op kantoor Utrecht traag",
     "Het netwerk is sinds vanochtend erg traag.", ("Daan Visser", "daan@klant.example"), "in_progress"),
    ("virus-alert", "api", "sv", "urgent", "Virusvarning på flera datorer",
     "Antivirusprogrammet varnar för malware på tre datorer.", ("Sara Lind", "sara@kund.example"), None),
    ("two-factor-help", "chat", "en", "normal", "Two-step sign-in codes lost",
     "I lost my phone and my two-step codes.", ("James Hall", "james@customer.example"), "pending"),
    ("invoice-copy-2024", "web", "en", "low", "Copy of a 2024 invoice",
     "I need a copy of invoice 2024-033 for our auditors.", ("Ava Young", "ava@customer.example"), "resolved"),
    ("vpn-new-employee", "email", "nl", "normal", "VPN voor nieuwe collega",
     "Onze nieuwe collega kan niet inloggen op de VPN.", ("Lotte Smit", "lotte@klant.example"), None),
    ("printer-scan", "social", "sv", "low", "Skanna till mejl fungerar inte",
     "Skrivaren skickar inte skannade dokument till mejlen.", ("Nils Ek", "nils@kund.example"), None),
]


class DemoError(RuntimeError):
    pass


class Api:
    """The platform's REST API as the demo calls it, with the admin token."""

    def __init__(self, url, token, timeout=30):
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout

    def call(self, method, path, body=None, headers=None):
        """``(status, answer)``; a status other than 2xx or 409 raises with the answer's error."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}/api/v1{path}", data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return answer.status, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")
            if error.code == 409:
                return 409, json.loads(detail or "null")
            raise DemoError(f"{method} {path}: HTTP {error.code} {detail[:300]}") from None
        except urllib.error.URLError as error:
            raise DemoError(f"the platform does not answer on {self.url} ({error.reason}): start it with `make run`") \
                from None


def load(api, echo=print):
    """Put the demo organisation into the platform behind ``api``; returns what was added, by kind."""
    added = {"teams": 0, "agents": 0, "rules": 0, "articles": 0, "tickets": 0}
    teams = {team["name"] for team in api.call("GET", "/teams")[1]}
    for team in TEAMS:  # the escalation target first
        if team["name"] not in teams:
            api.call("POST", "/teams", team)
            added["teams"] += 1
    agents = {agent["email"] for agent in api.call("GET", "/agents")[1]}
    for agent in AGENTS:
        if agent["email"] not in agents:
            api.call("POST", "/agents", {**agent, "presence": "online"})
            added["agents"] += 1
    rules = {rule["name"] for rule in api.call("GET", "/routing/rules")[1]}
    for rule in RULES:  # in order: the catch-all last
        if rule["name"] not in rules:
            api.call("POST", "/routing/rules", rule)
            added["rules"] += 1
    added["articles"] = _articles(api)
    for key, channel, language, priority, subject, description, (name, email), status in TICKETS:
        code, ticket = api.call("POST", "/tickets", {
            "subject": subject, "description": description, "channel": channel, "language": language,
            "priority": priority, "requester": {"name": name, "email": email}, "tags": ["demo"]},
            headers={"Idempotency-Key": f"demo-{key}"})
        if code == 201:
            added["tickets"] += 1
            for step in _path_to(status):
                api.call("PATCH", f"/tickets/{ticket['number']}", {"status": step})
    echo("demo: added " + ", ".join(f"{count} {kind}" for kind, count in added.items())
         + (" (all there already)" if not any(added.values()) else ""))
    return added


def _articles(api):
    """The English articles, then their translations linked to them; an ``external_id`` seen before is
    updated in place (the import's own rule), so a second run changes nothing."""
    english = [{"title": texts["en"][0], "body": texts["en"][1], "language": "en", "category": category,
                "status": "published", "external_id": f"demo-{key}-en"} for key, category, texts in ARTICLES]
    report = api.call("POST", "/kb/import", {"articles": english})[1]
    translations = [{"title": texts[lang][0], "body": texts[lang][1], "language": lang, "category": category,
                     "status": "published", "external_id": f"demo-{key}-{lang}", "translation_of": original}
                    for (key, category, texts), original in zip(ARTICLES, report["ids"]) for lang in ("nl", "sv")]
    second = api.call("POST", "/kb/import", {"articles": translations})[1]
    return report["created"] + second["created"]


def _path_to(status):
    """The workflow steps from ``new`` to ``status`` (the built-in workflow)."""
    return {None: [], "in_progress": ["in_progress"], "pending": ["pending"], "resolved": ["in_progress", "resolved"],
            "closed": ["in_progress", "resolved", "closed"]}[status]
