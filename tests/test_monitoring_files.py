"""The monitoring files under deploy/ hold: Prometheus' alerting rules pass ``promtool check rules`` and their
own ``promtool test rules`` cases (each alert fires on what it is for, and not before), the Prometheus config
passes ``promtool check config``, and the Grafana dashboard is a well-formed dashboard whose every query reads
metrics the platform exports, on the data source Grafana is provisioned with."""
import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from helpdesk_common.adapters import metrics as entrypoint_metrics
from helpdesk_analytics import service as analytics_service
from stack import ROOT

DEPLOY = os.path.join(ROOT, "deploy")
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool missing: make provision-test installs it")


def promtool(*args):
    result = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=os.path.join(DEPLOY, "prometheus"),
                            timeout=120)
    return result.returncode, result.stdout + result.stderr


@needs_promtool
def test_promtool_accepts_the_rules_and_the_config():
    code, output = promtool("check", "rules", "alerts.yml")
    assert code == 0 and "SUCCESS" in output, output
    code, output = promtool("check", "config", "prometheus.yml")
    assert code == 0, output


@needs_promtool
def test_the_alerts_fire_when_they_should_and_not_before():
    code, output = promtool("test", "rules", "alerts.test.yml")
    assert code == 0 and "SUCCESS" in output, output


@needs_promtool
def test_promtool_would_refuse_a_broken_rule(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: sum(helpdesk_open_tickets\n")
    code, output = promtool("check", "rules", str(broken))
    assert code != 0, output


def exported_metric_names():
    """Every metric the analytics service and the entrypoint timings export (with a histogram's series)."""
    names = set()
    for module in (analytics_service, entrypoint_metrics):
        for value in vars(module).values():
            describe = getattr(value, "describe", None)
            if callable(describe) and hasattr(value, "_name"):
                for family in describe():
                    names.add(family.name)
                    names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_count", "_sum", "_total"))
    return names


def test_the_grafana_dashboard_is_well_formed_and_reads_exported_metrics():
    with open(os.path.join(DEPLOY, "grafana", "dashboards", "helpdesk.json")) as stream:
        dashboard = json.load(stream)
    with open(os.path.join(DEPLOY, "grafana", "provisioning", "datasources", "prometheus.yml")) as stream:
        source_uids = {source["uid"] for source in yaml.safe_load(stream)["datasources"]}
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels), "panel ids repeat"
    known = exported_metric_names()
    cells = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        mine = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine
        assert panel["datasource"]["uid"] in source_uids, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            used = set(re.findall(r"\b(helpdesk_[a-z_]+)", target["expr"]))
            assert used and used <= known, (panel["title"], used - known)
    for metric in ("helpdesk_open_tickets", "helpdesk_sla_at_risk_tickets", "helpdesk_sla_breached_tickets",
                   "helpdesk_waiting_chats", "helpdesk_agents_online", "helpdesk_csat_ratio"):
        assert any(metric in t["expr"] for p in panels for t in p["targets"]), f"no panel shows {metric}"


def test_the_alert_rules_read_exported_metrics():
    with open(os.path.join(DEPLOY, "prometheus", "alerts.yml")) as stream:
        rules = [rule for group in yaml.safe_load(stream)["groups"] for rule in group["rules"]]
    known = exported_metric_names()
    for rule in rules:
        used = set(re.findall(r"\b(helpdesk_[a-z_]+)", rule["expr"]))
        assert used and used <= known, (rule["alert"], used - known)


def test_compose_provisions_grafana_and_the_rules_from_deploy():
    with open(os.path.join(ROOT, "docker-compose.yml")) as stream:
        services = yaml.load(stream, Loader=yaml.BaseLoader)["services"]
    mounts = services["grafana"]["volumes"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in mounts
    assert "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in services["prometheus"]["volumes"]
    assert re.fullmatch(r"grafana/grafana:\d+\.\d+\.\d+", services["grafana"]["image"])
