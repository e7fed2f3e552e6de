"""deploy/Dockerfile and /.dockerignore: hadolint, the build context, and the app stage's file layout run
for real (Docker itself does not run here): the files it copies start the backend with the image's settings,
and nothing is written outside /tmp and /data."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.support import DEPLOY, ROOT, TEST_SECRET, clean_env, process, run, stop, tool, wait_http
from tests.support.helpers import free_port

DOCKERFILE = DEPLOY / "Dockerfile"
NEVER_IN_CONTEXT = [".venv", ".tools", ".web", "data", "test-artifacts", ".git", ".pytest_cache", ".env", "tests"]


@dataclass
class Instruction:
    keyword: str
    args: str


def instructions() -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    joined, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        joined.append(current)
        current = ""
    result = []
    for text in joined:
        keyword, _, args = text.strip().partition(" ")
        result.append(Instruction(keyword.upper(), args.strip()))
    return result


def stages() -> dict[str, list[Instruction]]:
    result: dict[str, list[Instruction]] = {}
    name = ""
    for instruction in instructions():
        if instruction.keyword == "FROM":
            name = instruction.args.split(" AS ")[-1].strip()
            result[name] = []
        elif name:
            result[name].append(instruction)
    return result


def copies(stage: str) -> list[tuple[dict[str, str], list[str], str]]:
    """(flags, sources, destination) of each COPY in a stage."""
    result = []
    for instruction in stages()[stage]:
        if instruction.keyword != "COPY":
            continue
        words = shlex.split(instruction.args)
        flags = dict(word[2:].split("=", 1) for word in words if word.startswith("--"))
        paths = [word for word in words if not word.startswith("--")]
        result.append((flags, paths[:-1], paths[-1]))
    return result


def stage_env(stage: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in stages()[stage]:
        if instruction.keyword == "ENV":
            for pair in shlex.split(instruction.args):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


# --- lint and static checks ----------------------------------------------------------------------------


def test_hadolint_is_clean() -> None:
    result = run([tool("hadolint"), "--no-color", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout
    # Each ignored rule says why on the line above.
    lines = DOCKERFILE.read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore=" in line:
            assert lines[number - 1].startswith("# ") and "hadolint" not in lines[number - 1], line


def test_stages_and_base_images_are_pinned() -> None:
    assert list(stages()) == ["venv", "frontend", "proxy", "app"]  # app last: the default target
    arguments = {
        name: value
        for name, _, value in (i.args.partition("=") for i in instructions() if i.keyword == "ARG")
        if name.endswith("_IMAGE")
    }
    assert set(arguments) == {"PYTHON_IMAGE", "DEBIAN_IMAGE"}
    for image in arguments.values():
        assert re.fullmatch(r"[a-z]+:\d+\.\d+(\.\d+)?-[a-z]+(-[a-z]+)?", image), image


def test_no_step_hides_a_failure_and_no_recursive_chown() -> None:
    text = DOCKERFILE.read_text()
    assert "|| true" not in text and "|| :" not in text
    assert not re.search(r"chown\s+-R", text)


def test_bun_version_matches_the_makefile() -> None:
    makefile = (ROOT / "Makefile").read_text()
    version = re.search(r"^BUN_VERSION := (\S+)$", makefile, re.M)
    assert version
    assert f"bun@{version.group(1)} " in DOCKERFILE.read_text()


def test_runtime_stages_are_non_root_and_the_app_has_an_exec_form_healthcheck() -> None:
    for stage in ("app", "proxy"):
        users = [i.args for i in stages()[stage] if i.keyword == "USER"]
        assert users and re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[-1]), (stage, users)
    (healthcheck,) = [i.args for i in stages()["app"] if i.keyword == "HEALTHCHECK"]
    assert '["python", "/app/deploy/healthcheck.py"]' in healthcheck
    assert "curl" not in healthcheck
    # No Node and no bun at run time.
    for instruction in stages()["app"]:
        assert "npm" not in instruction.args and "bun" not in instruction.args


# --- the build context ---------------------------------------------------------------------------------


def _pattern(rule: str) -> re.Pattern[str]:
    parts = []
    for piece in re.split(r"(\*\*/?|\*|\?)", rule.strip("/")):
        parts.append({"**/": "(.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(piece, re.escape(piece)))
    return re.compile("".join(parts))


def in_context(path: str, rules: list[str]) -> bool:
    """Docker's .dockerignore semantics: the last matching rule wins; a rule for a folder covers its files."""
    included = True
    candidates = [path] + [str(parent) for parent in Path(path).parents if str(parent) != "."]
    for rule in rules:
        negated = rule.startswith("!")
        pattern = _pattern(rule.removeprefix("!"))
        if any(pattern.fullmatch(candidate) for candidate in candidates):
            included = negated
    return included


def dockerignore_rules() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_build_context_holds_what_the_images_copy_and_nothing_else() -> None:
    rules = dockerignore_rules()
    assert rules[0] == "*", "start from nothing and re-include"
    for stage in stages():
        for flags, sources, _ in copies(stage):
            if "from" in flags:
                continue
            for source in sources:
                assert (ROOT / source).exists(), source
                assert in_context(source.rstrip("/"), rules), f"COPY {source} is excluded by .dockerignore"
    for name in NEVER_IN_CONTEXT:
        assert not in_context(name, rules), name
        assert not in_context(f"{name}/anything.py", rules), name
    assert not in_context("cnop_app/__pycache__/config.cpython-311.pyc", rules)
    # What this checkout would send (a used checkout holds .venv, .web, data... beside the sources).
    size = 0
    for directory, folders, files in os.walk(ROOT):
        relative = Path(directory).relative_to(ROOT)
        folders[:] = [f for f in folders if in_context(str(relative / f), rules) or str(relative / f) == "deploy"]
        size += sum((Path(directory) / f).stat().st_size for f in files if in_context(str(relative / f), rules))
    print(f"build context: {size / 1024:.0f} KiB")
    assert size < 5 * 1024 * 1024


# --- the app stage, laid out and started ---------------------------------------------------------------


def stage_app(target: Path) -> None:
    """Lay out /app as the app stage's COPY instructions do (the venv stage's venv: this checkout's)."""
    target.mkdir()
    for flags, sources, destination in copies("app"):
        if flags.get("from") == "venv":
            (target / ".venv").symlink_to(ROOT / ".venv")
            continue
        assert "from" not in flags, flags
        dest = target / destination.removeprefix("/app/").removeprefix("./")
        for source in sources:
            origin = ROOT / source
            into = dest / origin.name if destination.endswith("/") else dest
            into.parent.mkdir(parents=True, exist_ok=True)
            if origin.is_dir():
                shutil.copytree(origin, into, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(origin, into)


def snapshot(tree: Path) -> dict[str, float]:
    return {
        str(path.relative_to(tree)): path.stat().st_mtime
        for path in tree.rglob("*")
        if ".venv" not in path.relative_to(tree).parts
    }


def test_app_stage_starts_with_the_image_settings_and_writes_only_tmp_and_data(tmp_path: Path) -> None:
    app = tmp_path / "app"
    stage_app(app)
    subprocess.run([str(app / ".venv" / "bin" / "python"), "-m", "compileall", "-q", "cnop_app"], cwd=app, check=True)
    port = free_port()
    env = clean_env()
    for key, value in stage_env("app").items():
        if key in ("PATH", "HOME"):
            continue
        # The image's writable places, /tmp and /data, become this test's own folders.
        env[key] = value.replace("/tmp", str(tmp_path / "tmp")).replace("/data", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    env.update(
        HOME=str(tmp_path / "tmp"),
        CNOP_PORT=str(port),
        CNOP_BACKEND_HOST="127.0.0.1",
        CNOP_JWT_SECRET=TEST_SECRET,
        CNOP_MARKET_SOURCE="snapshot",
        CNOP_LOG_LEVEL="WARNING",
        CNOP_MIGRATE_ON_START="true",
    )
    assert env["CNOP_ENV"] == "production"
    before = snapshot(app)
    (command,) = [i.args for i in stages()["app"] if i.keyword == "ENTRYPOINT"]
    entrypoint = app / json_list(command)[0].removeprefix("/app/")
    log = tmp_path / "app.log"
    with process([str(entrypoint)], env, log, cwd=tmp_path) as proc:
        wait_http(f"http://127.0.0.1:{port}/health", proc, log)
        health = subprocess.run(
            [str(app / ".venv" / "bin" / "python"), str(app / "deploy" / "healthcheck.py")], env=env, timeout=30
        )
        assert health.returncode == 0
        took = stop(proc)
    print(f"stopped {took:.1f}s after SIGTERM")
    assert proc.returncode is not None
    assert snapshot(app) == before, "the app wrote inside /app (the image's root is read-only in Kubernetes)"


def json_list(text: str) -> list[str]:
    value = json.loads(text)
    assert isinstance(value, list)
    return value


@pytest.mark.parametrize("stage", ["app", "proxy"])
def test_entrypoints_are_exec_form(stage: str) -> None:
    for keyword in ("ENTRYPOINT", "CMD"):
        (args,) = [i.args for i in stages()[stage] if i.keyword == keyword]
        assert json_list(args)
