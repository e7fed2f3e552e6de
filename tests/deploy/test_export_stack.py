"""The production layout end to end, as the images run it: the frontend exported once
(`entrypoint.sh export-frontend`, the proxy image's build step), a backend started with `entrypoint.sh serve`
(`reflex run --backend-only`, no bun or Node), and nginx (proxy.sh) serving the export before it."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect as websocket_connect

from tests.deploy.support import (
    ENTRYPOINT,
    ROUTES,
    app_env,
    clean_env,
    nginx,
    process,
    run,
    wait_http,
    world_readable_dir,
)
from tests.support.helpers import free_port

STATIC_ROUTES = [route for route in ROUTES if "[" not in route and route != "/"]
DYNAMIC_ROUTES = [route for route in ROUTES if "[" in route]


@dataclass
class Deployment:
    url: str
    site: Path
    backend_start_seconds: float


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    proxy_port, backend_port = free_port(), free_port()
    public_url = f"http://127.0.0.1:{proxy_port}"
    work = tmp_path_factory.mktemp("export-stack")
    with ExitStack() as stack:
        shared = stack.enter_context(world_readable_dir("cnop-export-test-"))
        # The JavaScript build tree (node_modules: ~200 MB) goes as soon as the export is done.
        stack.callback(shutil.rmtree, work / "web", True)
        env = app_env(work, backend_port, CNOP_PUBLIC_URL=public_url)
        exported = run([str(ENTRYPOINT), "export-frontend", str(shared / "site")], env=env, cwd=work)
        assert exported.returncode == 0, exported.stdout[-3000:] + exported.stderr[-3000:]
        shutil.rmtree(work / "web", ignore_errors=True)

        log = work / "backend.log"
        started = time.monotonic()
        backend = stack.enter_context(
            # The backend knows its public URL: the websocket's Origin must match it (CORS).
            process(
                [str(ENTRYPOINT), "serve"],
                app_env(work, backend_port, CNOP_MIGRATE_ON_START="true", CNOP_PUBLIC_URL=public_url),
                log,
            )
        )
        wait_http(f"http://127.0.0.1:{backend_port}/health", backend, log)
        start_seconds = time.monotonic() - started

        proxy_env = clean_env(
            CNOP_BACKENDS=f"127.0.0.1:{backend_port}",
            CNOP_STATIC_ROOT=str(shared / "site"),
            CNOP_PROXY_PORT=str(proxy_port),
        )
        proxy = stack.enter_context(nginx(shared, proxy_env))
        wait_http(f"{public_url}/", proxy, shared / "nginx.log", timeout=20)
        yield Deployment(public_url, shared / "site", start_seconds)


def test_export_layout(deployment: Deployment) -> None:
    site = deployment.site
    for name in ("index.html", "404.html", "index.html.gz"):
        assert (site / name).is_file(), name
    for route in STATIC_ROUTES:
        name = route.strip("/")
        assert (site / f"{name}.html").is_file() and (site / name / "index.html").is_file(), route
    for route in DYNAMIC_ROUTES:
        assert not list(site.glob(route.strip("/").split("[")[0] + "[*")), route
    (env_module,) = site.glob("assets/reflex-env-*.js")
    baked = env_module.read_text()
    # The browser finds the backend through the proxy, at the public URL baked in at export time.
    host = deployment.url.removeprefix("http://")
    assert f"ws://{host}/_event" in baked and f"http://{host}/_upload" in baked
    assert "localhost:3000" not in baked
    assert list(site.glob("assets/*.js.gz"))


def test_pages_through_the_proxy(deployment: Deployment) -> None:
    for route in ["/", *STATIC_ROUTES]:
        page = httpx.get(deployment.url + route)
        assert page.status_code == 200 and page.headers["content-type"] == "text/html", route
    for route in DYNAMIC_ROUTES:
        page = httpx.get(deployment.url + re.sub(r"\[[^]]+\]", "bitcoin", route))
        assert page.status_code == 200 and "<script" in page.text, route
    assert httpx.get(deployment.url + "/no-such-page").status_code == 404


def test_backend_through_the_proxy(deployment: Deployment) -> None:
    print(f"backend-only start to first /health answer: {deployment.backend_start_seconds:.1f}s")
    health = httpx.get(deployment.url + "/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assets = httpx.get(deployment.url + "/api/v1/inventory/assets")
    assert assets.status_code == 200 and assets.json()
    assert httpx.get(deployment.url + "/ping").status_code == 200
    assert httpx.get(deployment.url + "/metrics").status_code == 403


def test_websocket_through_the_proxy(deployment: Deployment) -> None:
    url = deployment.url.replace("http://", "ws://") + "/_event/?EIO=4&transport=websocket"
    # Not simple_websocket's client: when the server's first frame arrives in the same read as the
    # handshake answer (likely on a loaded machine), it holds that frame until the next one, the
    # Engine.IO ping 25 s later. A raw socket saw the open packet in that first read every time.
    with websocket_connect(url, open_timeout=10) as socket:
        opening = socket.recv(timeout=10)
    assert isinstance(opening, str) and opening.startswith('0{"sid":')
