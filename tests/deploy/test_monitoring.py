"""Prometheus config and alert rules (promtool check and unit tests), Grafana provisioning and dashboards:
every PromQL expression parses and names only metrics the app exports, and a scripted session makes
/metrics show every metric that a dashboard or an alert uses."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from cnop_app import http_security
from cnop_app.api import create_api
from cnop_app.config import reset_settings
from cnop_app.services import market
from cnop_app.services.auth import metrics as auth_metrics
from tests.deploy.support import DEPLOY, ROOT, run, tool
from tests.support.helpers import STRONG_PASSWORD, user_payload

PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
DASHBOARDS = {
    "security.json": "Security",
    "trading.json": "Trading",
    "market-feed.json": "Market feed",
    "system.json": "System",
}


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


def alert_rules(group_name: str | None = None) -> list[dict]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups if group_name in (None, group["name"]) for rule in group["rules"]]


def dashboard_exprs(name: str = "*.json") -> list[str]:
    exprs = []
    for path in sorted((GRAFANA / "dashboards").glob(name)):
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


def test_four_dashboards_security_trading_market_feed_system() -> None:
    found = {path.name: json.loads(path.read_text())["title"] for path in (GRAFANA / "dashboards").glob("*.json")}
    assert set(found) == set(DASHBOARDS)
    for name, topic in DASHBOARDS.items():
        assert found[name] == f"CNOP · {topic}"


def test_auth_alerts_cover_failed_logins_stuffing_and_revoked_tokens() -> None:
    names = {rule["alert"] for rule in alert_rules("cnop-auth")}
    assert names == {"CNOPFailedLoginBurst", "CNOPCredentialStuffing", "CNOPRevokedTokenReuse"}


@pytest.fixture
def scripted_metrics(cnop_env: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """/metrics after a session through the API: register, logins (ok, wrong, throttled), a deposit, an
    order, a logout, the revoked token presented again, many usernames from one address, a 429."""
    monkeypatch.setenv("CNOP_LOGIN_MAX_FAILURES", "2")
    monkeypatch.setenv("CNOP_LOGIN_IP_MAX_FAILURES", "6")
    monkeypatch.setenv("CNOP_RATE_LIMIT_AUTH_IP", "100/minute")
    monkeypatch.setenv("CNOP_RATE_LIMIT_READ_IP", "5/minute")
    reset_settings()
    market.seed_from_snapshot()
    market.refresh_prices()
    v1 = "/api/v1"
    with TestClient(http_security.wrap(create_api()), raise_server_exceptions=False) as client:
        assert client.post(f"{v1}/auth/register", json=user_payload("carol_01")).status_code == 201
        login = {"username": "carol_01", "password": STRONG_PASSWORD}
        token = client.post(f"{v1}/auth/login", json=login).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert client.post(f"{v1}/auth/login", json=login).status_code == 200  # a second session, kept
        assert client.post(f"{v1}/balance/deposit", json={"amount": "1000"}, headers=headers).status_code == 201
        order = {"order_type": "market_buy", "asset_id": "BTC", "quantity": "0.001"}
        assert client.post(f"{v1}/orders", json=order, headers=headers).status_code == 201
        assert client.post(f"{v1}/auth/logout", headers=headers).status_code == 200
        assert client.get(f"{v1}/auth/profile", headers=headers).status_code == 401  # the revoked token again
        wrong = {"username": "carol_01", "password": "Wrong-Password-99"}
        statuses = [client.post(f"{v1}/auth/login", json=wrong).status_code for _ in range(3)]
        assert statuses == [401, 401, 429]  # the second failure starts the delay
        for number in range(6):  # one address, many usernames: its per-IP throttle starts
            client.post(f"{v1}/auth/login", json={"username": f"victim_{number:02d}", "password": "Wrong-Pass-99"})
        statuses = [client.get(f"{v1}/market/status").status_code for _ in range(7)]
        assert statuses[-1] == 429
        auth_metrics.count_active_sessions()  # what the app's lifespan task does every minute
        response = client.get("/metrics")
    assert response.status_code == 200
    return response.text


def test_every_metric_of_the_dashboards_and_alerts_is_in_metrics_after_a_session(scripted_metrics: str) -> None:
    samples: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(scripted_metrics):
        samples.setdefault(family.name, [])
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample.value)
    used = set().union(*(metrics_in(expr) for expr in [rule["expr"] for rule in alert_rules()] + dashboard_exprs()))
    assert used, "no metric names found"
    missing = sorted(name for name in used if not samples.get(name) and name.removesuffix("_total") not in samples)
    assert not missing, f"used by a dashboard or an alert but absent from /metrics: {missing}"
    # The auth metrics of the Security dashboard and the cnop-auth alerts were moved by the session itself.
    security = set().union(*(metrics_in(e) for e in dashboard_exprs("security.json")))
    security |= set().union(*(metrics_in(rule["expr"]) for rule in alert_rules("cnop-auth")))
    for name in sorted(security):
        assert sum(samples.get(name, [])) > 0, f"{name} did not move during the scripted session"
    for needle in (
        'cnop_logins_total{outcome="success"}',
        'cnop_logins_total{outcome="bad_credentials"}',
        'cnop_logins_total{outcome="throttled"}',
        'cnop_token_rejections_total{reason="revoked"}',
        'cnop_suspicious_events_total{kind="revoked_token_reuse"}',
        'cnop_suspicious_events_total{kind="many_usernames_one_ip"}',
        'cnop_auth_events_total{event="registered"}',
        'cnop_auth_events_total{event="logout"}',
        'cnop_rate_limited_total{group="read"}',
    ):
        (line,) = [line for line in scripted_metrics.splitlines() if line.startswith(needle + " ")]
        assert float(line.split()[-1]) >= 1, line
