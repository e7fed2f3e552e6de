"""Prometheus config and alert rules (promtool check and unit tests), Grafana provisioning and dashboards:
every PromQL expression parses and names only metrics the app exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tests.deploy.support import DEPLOY, ROOT, run, tool

PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"


def app_metrics() -> set[str]:
    """Metric names the app defines (prometheus_client: Counter, Gauge, Histogram), with exported suffixes."""
    names = set()
    for path in (ROOT / "cnop_app").rglob("*.py"):
        for kind, name in re.findall(r"\b(Counter|Gauge|Histogram)\(\s*\"(cnop_[a-z0-9_]+)\"", path.read_text()):
            names.add(name)
            if kind == "Histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    assert len(names) > 10
    return names


def metrics_in(expr: str) -> set[str]:
    return set(re.findall(r"\bcnop_[a-z0-9_]+\b", expr))


def alert_rules() -> list[dict]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    exprs = []
    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            exprs += [target["expr"] for target in panel["targets"]]
    return exprs


def test_promtool_check_config() -> None:
    result = run([tool("promtool"), "check", "config", str(PROMETHEUS / "prometheus.yml")])
    assert result.returncode == 0
    assert "SUCCESS" in result.stdout


def test_promtool_check_rules() -> None:
    result = run([tool("promtool"), "check", "rules", str(PROMETHEUS / "alerts.yml")])
    assert result.returncode == 0
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_alert_unit_tests() -> None:
    result = run([tool("promtool"), "test", "rules", str(PROMETHEUS / "alerts.test.yml")])
    assert result.returncode == 0
    assert "SUCCESS" in result.stdout


def test_every_alert_is_labelled_documented_and_unit_tested() -> None:
    tested = (PROMETHEUS / "alerts.test.yml").read_text()
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert f"alertname: {rule['alert']}\n" in tested, f"{rule['alert']} has no case in alerts.test.yml"


def test_alerts_and_dashboards_use_only_exported_metrics() -> None:
    known = app_metrics()
    for expr in [rule["expr"] for rule in alert_rules()] + dashboard_exprs():
        assert metrics_in(expr) <= known, f"unknown metric in {expr!r}: {metrics_in(expr) - known}"


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    # promtool parses expressions in rule files: the dashboard's queries become recording rules.
    records = [{"record": f"cnop:panel{number}", "expr": expr} for number, expr in enumerate(dashboard_exprs())]
    rules = {"groups": [{"name": "dashboard", "rules": records}]}
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = run([tool("promtool"), "check", "rules", str(path)])
    assert result.returncode == 0


def test_grafana_provisioning_points_at_the_dashboards_and_the_datasource() -> None:
    provisioning = GRAFANA / "provisioning"
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())["datasources"]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "cnop.yaml").read_text())["providers"]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    mounts = dict(volume.split(":")[:2] for volume in compose["services"]["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    uids = set()
    for path in (GRAFANA / "dashboards").glob("*.json"):
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] not in uids
        uids.add(dashboard["uid"])
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
    assert uids


def test_prometheus_scrapes_every_app_instance_directly() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "cnop"]
    (discovery,) = job["dns_sd_configs"]
    assert discovery["names"] == ["app"] and discovery["port"] == 3000
    assert config["rule_files"] == ["alerts.yml"]
