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
