"""deploy/k8s: every manifest against the Kubernetes schemas (`kubernetes-validate --strict`), the kustomize
rendering, and the properties the deployment relies on (probes, security, affinity, /metrics kept private)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.deploy.support import BACKEND_PATHS, DEPLOY, run, tool

K8S = DEPLOY / "k8s"
MANIFESTS = sorted(path for path in K8S.glob("*.yaml") if path.name != "kustomization.yaml")


def documents() -> list[dict]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def of_kind(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in documents() if doc["kind"] == kind}


def pod_specs() -> dict[str, dict]:
    specs = {}
    for kind in ("Deployment", "StatefulSet", "Job"):
        for name, doc in of_kind(kind).items():
            specs[f"{kind}/{name}"] = doc["spec"]["template"]["spec"]
    return specs


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda path: path.name)
def test_manifest_is_valid_kubernetes(manifest: Path) -> None:
    result = run([tool("kubernetes-validate"), "--strict", str(manifest)])
    assert result.returncode == 0
    assert "ERROR" not in result.stdout + result.stderr


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {path.name for path in MANIFESTS} - {"secret.example.yaml"}
    assert kustomization["namespace"] == "cnop"
    assert all(doc["metadata"].get("namespace", "cnop") == "cnop" for doc in documents())


def test_kustomize_renders_valid_kubernetes(tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl is not installed (each manifest is still validated on its own)")
    rendered = run([kubectl, "kustomize", str(K8S)])
    assert rendered.returncode == 0
    path = tmp_path / "rendered.yaml"
    path.write_text(rendered.stdout)
    applied = [doc for doc in documents() if doc["kind"] != "Secret"]
    assert len([doc for doc in yaml.safe_load_all(rendered.stdout) if doc]) == len(applied)
    result = run([tool("kubernetes-validate"), "--strict", "--quiet", str(path)])
    assert result.returncode == 0


def test_every_pod_is_locked_down_and_sized() -> None:
    for name, spec in pod_specs().items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec.get("automountServiceAccountToken") is False, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name
            image = container["image"]
            assert re.search(r":\d+(\.\d+)+(-[a-z]+)?$", image), f"{name}: pin {image}"


def test_app_probes_and_graceful_stop() -> None:
    deployment = of_kind("Deployment")["cnop-app"]
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["failureThreshold"] * container["readinessProbe"]["periodSeconds"] <= 5
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    assert container["livenessProbe"]["httpGet"]["path"] == "/ping"
    sleep = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    # The app stops within 10 s of SIGTERM, which comes after the preStop hook.
    assert spec["terminationGracePeriodSeconds"] >= sleep + 10
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert mounts == {"/tmp", "/data"}
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    config = of_kind("ConfigMap")["cnop-config"]["data"]
    assert config["CNOP_PUBLIC_URL"].startswith("https://")
    assert config["REFLEX_REDIS_URL"].startswith("redis://")


def test_ingress_has_tls_affinity_and_no_metrics() -> None:
    (ingress,) = of_kind("Ingress").values()
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    (tls,) = ingress["spec"]["tls"]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] in tls["hosts"]
    routes = {path["path"]: path["backend"]["service"]["name"] for path in rule["http"]["paths"]}
    assert not any(path.startswith("/metrics") for path in routes)
    # The same backend paths as the compose proxy (test_nginx checks those reach the backends).
    assert {path for path, service in routes.items() if service == "cnop-app"} == BACKEND_PATHS
    assert routes["/"] == "cnop-proxy"
    public_url = of_kind("ConfigMap")["cnop-config"]["data"]["CNOP_PUBLIC_URL"]
    assert public_url == f"https://{rule['host']}"


def test_disruption_budget_autoscaler_and_metrics_service() -> None:
    app_selector = of_kind("Deployment")["cnop-app"]["spec"]["selector"]["matchLabels"]
    assert of_kind("PodDisruptionBudget")["cnop-app"]["spec"]["selector"]["matchLabels"] == app_selector
    hpa = of_kind("HorizontalPodAutoscaler")["cnop-app"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "cnop-app" and hpa["minReplicas"] >= 2
    metrics = of_kind("Service")["cnop-metrics"]
    assert metrics["spec"]["clusterIP"] == "None"
    assert metrics["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert of_kind("Job")["cnop-migrate"]["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
