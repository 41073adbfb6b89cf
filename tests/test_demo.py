"""`make demo` (``helpdesk demo``) against the running platform: the demo organisation arrives through the
API (teams, agents, rules, articles in three languages, tickets, every ticket routed), and a second run
adds nothing."""
import os
import subprocess
import sys

import pytest

from stack import wait_for

pytestmark = pytest.mark.e2e

HELPDESK = os.path.join(os.path.dirname(sys.executable), "helpdesk")


def run_demo(platform):
    result = subprocess.run([HELPDESK, "demo", "--url", platform.url, "--token", platform.token],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_demo_fills_the_platform_once(platform, api):
    first = run_demo(platform)
    assert "added 2 teams, 5 agents, 4 rules, 30 articles, 16 tickets" in first, first

    url = f"{platform.url}/api/v1"
    assert {"service-desk", "specialists"} <= {team["name"] for team in api.get(f"{url}/teams").json()}
    agents = [a for a in api.get(f"{url}/agents").json() if a["email"].endswith("@demo.example")]
    assert len(agents) == 5 and all(a["presence"] == "online" for a in agents)
    languages = {hit["language"] for lang in ("en", "nl", "sv")
                 for hit in api.get(f"{url}/kb/search", params={"q": "VPN", "lang": lang}).json()["items"]}
    assert languages >= {"en", "nl", "sv"}
    demo_tickets = lambda: [t for t in api.get(f"{url}/tickets", params={"limit": 100}).json()["items"]  # noqa: E731
                            if "demo" in t["tags"]]
    assert len(demo_tickets()) == 16
    assert len({t["channel"] for t in demo_tickets()}) >= 5

    def every_ticket_routed():
        routed = [api.get(f"{url}/tickets/{t['number']}/routing") for t in demo_tickets()]
        return all(r.status_code == 200 and r.json()["team"] for r in routed) and routed
    routed = wait_for(every_ticket_routed, timeout=60, what="routing to place every demo ticket")
    assert {r.json()["team"] for r in routed} == {"service-desk", "specialists"}  # the security rule escalates

    second = run_demo(platform)
    assert "added 0 teams, 0 agents, 0 rules, 0 articles, 0 tickets (all there already)" in second, second
    assert len(demo_tickets()) == 16
    assert len([a for a in api.get(f"{url}/agents").json() if a["email"].endswith("@demo.example")]) == 5
