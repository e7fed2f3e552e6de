"""Every command in deploy/README.md is run here or checked against what it relies on. A command added to the
README without an entry below fails `test_every_readme_command_is_covered`."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.deploy.support import DEPLOY, PROXY, VENV_BIN, clean_env, run, tool

README = DEPLOY / "README.md"
COMPOSE = "docker compose -f deploy/compose.yaml "


def readme_commands() -> list[str]:
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip():
                commands.append(line.strip())
    return commands


def compose_services() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]


def k8s_objects() -> set[tuple[str, str]]:
    return {
        (doc["kind"].lower(), doc["metadata"]["name"])
        for path in (DEPLOY / "k8s").glob("*.yaml")
        for doc in yaml.safe_load_all(path.read_text())
        if doc and "metadata" in doc
    }


def kustomize_images() -> set[str]:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    return {f"{image['name']}:{image['newTag']}" for image in kustomization["images"]}


# What each kind of command relies on; the commands that can run here are run by the tests further down.
def _compose_service(command: str) -> None:
    words = command.removeprefix(COMPOSE).split()
    services = compose_services()
    if "--profile" in words:
        profile = words[words.index("--profile") + 1]
        assert any(profile in service.get("profiles", []) for service in services.values())
    if "--scale" in words:
        name = words[words.index("--scale") + 1].split("=")[0]
        # Scaling needs no fixed container name and no host port on the scaled service.
        assert "container_name" not in services[name] and "ports" not in services[name]
    for verb in ("restart", "exec"):
        if verb in words:
            assert words[words.index(verb) + 1] in services
    if "exec" in words:
        module = words[words.index("python") + 2]
        assert subprocess.run([str(VENV_BIN / "python"), "-m", module, "--help"], capture_output=True).returncode == 0


def _health_on_the_published_port(command: str) -> None:
    assert "${CNOP_HTTP_PORT:-8080}:8080" in compose_services()["proxy"]["ports"]
    assert command.endswith("http://localhost:8080/health")  # served through the proxy: test_export_stack


def _docker_build(command: str) -> None:
    target = re.search(r"--target (\w+)", command)
    assert target and target.group(1) in ("app", "proxy")
    assert re.search(rf"^FROM \S+ AS {target.group(1)}$", (DEPLOY / "Dockerfile").read_text(), re.M)
    tag = re.search(r"-t (\S+)", command)
    assert tag and tag.group(1) in kustomize_images()


def _docker_push(command: str) -> None:
    assert command.split()[-1] in kustomize_images()


def _k8s_object(command: str) -> None:
    match = re.search(r"(job|deployment|hpa)[/ ]([\w-]+)", command)
    assert match
    kind = {"hpa": "horizontalpodautoscaler"}.get(match.group(1), match.group(1))
    assert (kind, match.group(2)) in k8s_objects()


def _file_exists(command: str) -> None:
    assert (DEPLOY.parent / command.split()[-1]).is_file()


COVERED: list[tuple[str, Callable[[str], None] | str]] = [
    (r"cp deploy/\.env\.example deploy/\.env$", "run by test_env_preparation"),
    (r'sed -i "s/\^[A-Z_]+=\.\*/', "run by test_env_preparation"),
    (re.escape(COMPOSE) + r"(build|up -d|ps|up -d --build)$", "compose schema, test_dockerfile (images)"),
    (re.escape(COMPOSE) + r".*(--scale|restart|--profile|exec)", _compose_service),
    (r"curl -fsS http://localhost:8080/health$", _health_on_the_published_port),
    (r"docker build -f deploy/Dockerfile ", _docker_build),
    (r"docker push ", _docker_push),
    (r"kubectl apply -f deploy/k8s/namespace\.yaml$", _file_exists),
    (r"PGPASS=|kubectl -n cnop create secret ", "run by test_kubernetes_secrets (--dry-run=client)"),
    (r"kubectl apply -k deploy/k8s$", "test_k8s: kubectl kustomize + kubernetes-validate"),
    (r"kubectl -n cnop (wait|rollout status|get hpa|delete job)", _k8s_object),
    (r"(CNOP_PORT=\d+ |CNOP_PUBLIC_URL=\S+ )?deploy/entrypoint\.sh ", "test_entrypoint, test_export_stack"),
    (r"CNOP_BACKENDS=\S+ CNOP_STATIC_ROOT=\S+ deploy/nginx/proxy\.sh run ", "run by test_proxy_command"),
]


def test_every_readme_command_is_covered() -> None:
    commands = readme_commands()
    assert len(commands) > 20
    for command in commands:
        matches = [check for pattern, check in COVERED if re.match(pattern, command)]
        assert matches, f"no test covers this README command: {command}"
        for check in matches:
            if callable(check):
                check(command)


def test_env_preparation(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    shutil.copy(DEPLOY / ".env.example", tmp_path / "deploy" / ".env.example")
    script = [command for command in readme_commands() if "deploy/.env" in command and "compose" not in command]
    assert len(script) == 4
    result = subprocess.run(["sh", "-ec", "\n".join(script)], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "deploy" / ".env").read_text().splitlines()
    values = dict(line.split("=", 1) for line in lines if re.match(r"^\w+=", line))
    assert re.fullmatch(r"[0-9a-f]{64}", values["CNOP_JWT_SECRET"])
    assert re.fullmatch(r"[0-9a-f]{32}", values["POSTGRES_PASSWORD"])
    assert re.fullmatch(r"[0-9a-f]{32}", values["GRAFANA_ADMIN_PASSWORD"])


def test_kubernetes_secrets(tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl is not installed")
    certificate = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=cnop"]
    run([*certificate, "-keyout", str(tmp_path / "tls.key"), "-out", str(tmp_path / "tls.crt")])
    script = []
    for line in readme_commands():
        if line.startswith("PGPASS="):
            script.append(line)
        elif line.startswith("kubectl -n cnop create secret"):
            script += [f"{line} --dry-run=client -o yaml", "echo ---"]
    rendered = subprocess.run(["sh", "-ec", "\n".join(script)], cwd=tmp_path, capture_output=True, text=True)
    assert rendered.returncode == 0, rendered.stderr
    secrets = {doc["metadata"]["name"]: doc for doc in yaml.safe_load_all(rendered.stdout) if doc}
    assert set(secrets) == {"cnop-secrets", "cnop-tls"}
    example = yaml.safe_load((DEPLOY / "k8s" / "secret.example.yaml").read_text())
    assert set(secrets["cnop-secrets"]["data"]) == set(example["stringData"])
    assert secrets["cnop-tls"]["type"] == "kubernetes.io/tls"
    (tmp_path / "secrets.yaml").write_text(rendered.stdout)
    assert run([tool("kubernetes-validate"), "--strict", str(tmp_path / "secrets.yaml")]).returncode == 0


def test_proxy_command(tmp_path: Path) -> None:
    (command,) = [c for c in readme_commands() if "deploy/nginx/proxy.sh run" in c]
    assignments = dict(word.split("=", 1) for word in command.split() if re.match(r"^[A-Z_]+=", word))
    env = clean_env(**assignments)
    result = run([str(PROXY), "check", str(tmp_path / "conf")], env=env, cwd=DEPLOY.parent)
    assert result.returncode == 0
    assert f"root {assignments['CNOP_STATIC_ROOT']};" in (tmp_path / "conf" / "cnop.conf").read_text()
