"""deploy/compose.yaml against the compose-spec JSON schema (check-jsonschema's vendored copy: no network),
and its consistency with deploy/.env.example, the app's settings and the files it mounts."""

from __future__ import annotations

import re

import yaml

from cnop_app.config import Settings
from tests.deploy.support import DEPLOY, run, tool

COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(:?[-?][^}]*)?\}")


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if re.match(r"^[A-Z0-9_]+=", line))
    return dict(pairs)


def test_compose_file_matches_the_compose_spec_schema() -> None:
    result = run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)])
    assert result.returncode == 0
    assert "ok -- validation done" in result.stdout


def test_every_variable_is_in_the_env_example_and_the_secrets_are_required() -> None:
    used = {match.group(1): match.group(2) or "" for match in VARIABLE.finditer(COMPOSE.read_text())}
    documented = example()
    assert set(used) == set(documented)
    for name in ("CNOP_JWT_SECRET", "POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD"):
        assert used[name].startswith(":?"), f"{name} must be required (${{{name}:?...}})"
        assert documented[name] == "", f"the example must not ship a value for {name}"


def test_app_environment_names_real_settings() -> None:
    app_env = compose()["services"]["app"]["environment"]
    known = {f"CNOP_{name.upper()}" for name in Settings.model_fields}
    for name in app_env:
        if name.startswith("CNOP_"):
            assert name in known, f"{name} is not a CNOP setting"


def test_topology() -> None:
    services = compose()["services"]
    assert {"proxy", "app", "migrate", "postgres", "redis", "prometheus", "grafana", "dynamodb"} <= set(services)
    app = services["app"]
    assert int(app["deploy"]["replicas"]) >= 2
    assert app["command"] == ["serve"] and services["migrate"]["command"] == ["migrate"]
    assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert app["environment"]["CNOP_DATABASE_URL"].startswith("postgresql://")
    assert app["environment"]["REFLEX_REDIS_URL"].startswith("redis://redis:")
    assert app["read_only"] is True and "/tmp" in app["tmpfs"]
    assert services["proxy"]["build"]["target"] == "proxy" and app["build"]["target"] == "app"
    assert services["dynamodb"]["profiles"] == ["mirror"]
    # Only the proxy is published beyond this host.
    for name, service in services.items():
        for port in service.get("ports", []):
            assert name == "proxy" or str(port).startswith("127.0.0.1:"), (name, port)


def test_images_are_pinned_and_volumes_named_or_in_the_repo() -> None:
    document = compose()
    for name, service in document["services"].items():
        image = service.get("image", "")
        tag = VARIABLE.sub(lambda m: (m.group(2) or "")[2:], image).rsplit(":", 1)[-1]
        assert re.search(r"\d", tag) and tag != "latest", (name, image)
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), (name, source)
            else:
                assert source in document["volumes"], (name, source)
