"""Helpers of the deploy tests: paths, the validators, and processes (backend, nginx) on their own ports."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.app_server import clean_env

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ENTRYPOINT = DEPLOY / "entrypoint.sh"
PROXY = DEPLOY / "nginx" / "proxy.sh"
VENV_BIN = Path(sys.executable).parent
TEST_SECRET = "deploy-test-secret-" + "x" * 40
# What the proxy (deploy/nginx/cnop.conf) and the Ingress (deploy/k8s/ingress.yaml) send to the backends.
BACKEND_PATHS = frozenset({"/_event", "/_upload", "/api", "/health", "/ping", "/_health", "/docs", "/openapi.json"})
# The Reflex pages, read from the app module's add_page calls (no import of the app).
ROUTES = re.findall(r'add_page\([^)]*route="([^"]+)"', (ROOT / "cnop_app" / "cnop_app.py").read_text())


def tool(name: str) -> str:
    """The path of a validator: the venv's (PyPI tools) first, then the system's (Debian packages)."""
    candidate = VENV_BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if not found:
        pytest.fail(f"{name} is not installed: run `make setup-test`")
    return found


def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output, and print it (pytest shows it with -s or on failure)."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)  # type: ignore[call-overload]
    print(f"$ {' '.join(args)}\n{result.stdout}{result.stderr}".rstrip())
    return result


def app_env(work: Path, port: int, **extra: str) -> dict[str, str]:
    """A backend on `port` with its data, Reflex work dirs and SQLite database under `work`."""
    return clean_env(
        CNOP_PORT=str(port),
        CNOP_DATA_DIR=str(work / "data"),
        CNOP_ENV="development",
        CNOP_MARKET_SOURCE="snapshot",
        CNOP_LOG_LEVEL="WARNING",
        CNOP_BACKEND_HOST="127.0.0.1",
        REFLEX_DIR=str(work / "reflex"),
        REFLEX_WEB_WORKDIR=str(work / "web"),
        REFLEX_STATES_WORKDIR=str(work / "states"),
        REFLEX_TELEMETRY_ENABLED="false",
        REFLEX_CHECK_LATEST_VERSION="false",
        **extra,
    )


@contextmanager
def process(args: list[str], env: Mapping[str, str], log: Path, cwd: Path | None = None) -> Iterator[subprocess.Popen]:
    """Start `args` in its own process group; on exit SIGTERM the group (SIGKILL after 20 s)."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            args, env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield proc
        finally:
            stop(proc)


def stop(proc: subprocess.Popen, timeout: float = 20) -> float:
    """SIGTERM the process group and wait; return the seconds it took to exit."""
    start = time.monotonic()
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            proc.wait()
    return time.monotonic() - start


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120, **kwargs: object) -> httpx.Response:
    """Poll `url` until it answers 200; fail with the log's tail if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
        try:
            response = httpx.get(url, timeout=2, **kwargs)  # type: ignore[arg-type]
            if response.status_code == 200:
                return response
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{url} did not answer 200 in {timeout}s:\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.2)


@contextmanager
def world_readable_dir(prefix: str) -> Iterator[Path]:
    """A temp dir outside pytest's private (mode 700) base, for processes that drop to `nobody`."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def nginx(work: Path, env: Mapping[str, str]) -> Iterator[subprocess.Popen]:
    """Render the proxy config into work/conf (proxy.sh) and run nginx in the foreground.

    Unprivileged like in the image: as `nobody` when the tests run as root. nginx reopens /dev/stdout, which
    the container runtime hands to the user; here its log file is made theirs."""
    conf = work / "conf"
    assert run([str(PROXY), "render", str(conf)], env=dict(env)).returncode == 0
    command = [tool("nginx"), "-e", "stderr", "-p", f"{conf}/", "-c", str(conf / "nginx.conf"), "-g", "daemon off;"]
    log = work / "nginx.log"
    log.touch()
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "nobody", str(work)], check=True)
        command = ["runuser", "-u", "nobody", "--", *command]
    with process(command, env, log) as proc:
        yield proc
