"""Helpers of the browser tests (``tests/ui/``): people's accounts made with the operator's command, signing
in through the form, axe-core's verdict, screenshots for the README. Fixtures are in ``conftest.py``."""
import os
import subprocess

from stack import BIN, ROOT

SHOTS = os.path.join(ROOT, "docs", "screenshots")
PASSWORD = "correct horse battery"
SERIOUS = ("serious", "critical")


def create_account(stack, email, role, name=None, language=None, password=PASSWORD):
    """An account made as an operator makes the first ones (``helpdesk account create``)."""
    argv = [os.path.join(BIN, "helpdesk"), "account", "create", "--email", email, "--role", role,
            "--password", password] + (["--name", name] if name else []) + (["--language", language] if language else [])
    subprocess.run(argv, cwd=ROOT, env=stack.env(), check=True, capture_output=True)


def sign_in(page, world, email, password=PASSWORD, landing="#ticket-rows"):
    """Through the sign-in form; waits for the page it lands on (the ticket list unless ``landing`` says)."""
    page.goto(url=f"{world.url}/sign-in")
    page.fill(selector="#email", value=email)
    page.fill(selector="#password", value=password)
    page.click(selector="button[type=submit]")
    page.wait_for(selector=landing)


def no_serious_violations(page):
    found = [v for v in page.axe() if v["impact"] in SERIOUS]
    assert found == [], found


def shot(page, name, full_page=True):
    """docs/screenshots/<name>.png (the README shows them): the whole page, or the window's part."""
    page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=full_page)


class World:
    """The workspace's people: teams network and billing, an agent of each (Ada, Bo), an admin and Ada's
    account; tickets from Eva."""

    def __init__(self, stack):
        self.stack, self.url = stack, stack.url
        self.api = stack.session()
        for team in ("network", "billing"):
            self.api.post(f"{self.url}/api/v1/teams", json={"name": team}, timeout=10).raise_for_status()
        for name, team in (("Ada Lovelace", "network"), ("Bo Berg", "billing")):
            self.api.post(f"{self.url}/api/v1/agents", json={
                "name": name, "email": f"{name.split()[0].lower()}@example.org", "teams": [team],
                "presence": "offline"}, timeout=10).raise_for_status()
        self.account("admin@example.org", "admin", "Alex Admin")
        self.account("ada@example.org", "agent")

    def account(self, email, role, name=None):
        create_account(self.stack, email, role, name)

    def ticket(self, subject, team=None, description="Every 5 minutes since Monday", priority="high"):
        body = {"subject": subject, "description": description, "priority": priority,
                "requester": {"email": "eva@example.se", "name": "Eva Ångström"}}
        if team:
            body["team"] = team
        answer = self.api.post(f"{self.url}/api/v1/tickets", json=body, timeout=10)
        answer.raise_for_status()
        return answer.json()["number"]

    def counts(self):
        return self.api.get(f"{self.url}/api/v1/tickets/counts", timeout=10).json()

    def messages(self, number):
        return self.api.get(f"{self.url}/api/v1/tickets/{number}/messages", timeout=10).json()
