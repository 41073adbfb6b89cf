"""The survey mail in English, Dutch and Swedish (the ticket's language)."""
MAIL = {
    "en": {"subject": "[{number}] How did we do? {subject}",
           "body": "Hello,\n\nYour request {number} has been resolved. How satisfied are you with the help you got? "
                   "One click is enough:\n\n{choices}\n\nYou can change your answer later with the same links, and "
                   "add a comment on the page that opens.\n",
           "labels": ("very unhappy", "unhappy", "neutral", "happy", "very happy")},
    "nl": {"subject": "[{number}] Hoe hebben we het gedaan? {subject}",
           "body": "Hallo,\n\nJe verzoek {number} is opgelost. Hoe tevreden ben je over de hulp? "
                   "Eén klik is genoeg:\n\n{choices}\n\nJe kunt je antwoord later met dezelfde links wijzigen, en "
                   "een opmerking toevoegen op de pagina die opent.\n",
           "labels": ("zeer ontevreden", "ontevreden", "neutraal", "tevreden", "zeer tevreden")},
    "sv": {"subject": "[{number}] Hur gick det? {subject}",
           "body": "Hej,\n\nDitt ärende {number} är löst. Hur nöjd är du med hjälpen du fick? "
                   "Ett klick räcker:\n\n{choices}\n\nDu kan ändra ditt svar senare med samma länkar, och lägga "
                   "till en kommentar på sidan som öppnas.\n",
           "labels": ("mycket missnöjd", "missnöjd", "neutral", "nöjd", "mycket nöjd")},
}

MESSAGE = {  # chat, social and phone tickets: one link, the page offers the five ratings and a comment
    "en": "Your request {number} has been resolved. How satisfied are you with the help you got? Rate it here: {link}",
    "nl": "Je verzoek {number} is opgelost. Hoe tevreden ben je over de hulp? Geef je oordeel hier: {link}",
    "sv": "Ditt ärende {number} är löst. Hur nöjd är du med hjälpen du fick? Betygsätt den här: {link}",
}

NPS_MAIL = {
    "en": {"subject": "Would you recommend us?",
           "body": "Hello,\n\nYou recently had help from us. How likely is it that you would recommend us to a friend "
                   "or colleague, from 0 (not at all) to 10 (certainly)? One click is enough:\n\n{scores}\n\n"
                   "The page that opens lets you tell us why.\n"},
    "nl": {"subject": "Zou je ons aanbevelen?",
           "body": "Hallo,\n\nJe kreeg onlangs hulp van ons. Hoe waarschijnlijk is het dat je ons aanbeveelt bij een "
                   "vriend of collega, van 0 (helemaal niet) tot 10 (zeker)? Eén klik is genoeg:\n\n{scores}\n\n"
                   "Op de pagina die opent kun je zeggen waarom.\n"},
    "sv": {"subject": "Skulle du rekommendera oss?",
           "body": "Hej,\n\nDu fick nyligen hjälp av oss. Hur troligt är det att du skulle rekommendera oss till en "
                   "vän eller kollega, från 0 (inte alls) till 10 (absolut)? Ett klick räcker:\n\n{scores}\n\n"
                   "På sidan som öppnas kan du berätta varför.\n"},
}
