"""deploy/entrypoint.sh from a checkout: usage, errors, and `migrate` on a fresh SQLite data dir."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic.script import ScriptDirectory

from tests.deploy.support import ENTRYPOINT, ROOT, app_env, run


def test_help_lists_the_subcommands(tmp_path: Path) -> None:
    result = run([str(ENTRYPOINT), "--help"], cwd=tmp_path, env=app_env(tmp_path, 3000))
    assert result.returncode == 0
    for word in ("serve", "migrate", "export-frontend", "CNOP_PORT", "CNOP_MIGRATE_ON_START"):
        assert word in result.stdout


def test_unknown_subcommand_fails_with_usage(tmp_path: Path) -> None:
    result = run([str(ENTRYPOINT), "deploy-everything"], cwd=tmp_path, env=app_env(tmp_path, 3000))
    assert result.returncode == 2
    assert "migrate" in result.stderr


def test_bad_migrate_on_start_value_is_refused_before_anything_runs(tmp_path: Path) -> None:
    env = app_env(tmp_path, 3000, CNOP_MIGRATE_ON_START="sometimes")
    result = run([str(ENTRYPOINT), "serve"], cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "CNOP_MIGRATE_ON_START" in result.stderr
    assert not (tmp_path / "data" / "cnop.db").exists()


def test_migrate_from_another_directory_builds_the_schema_and_is_idempotent(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = app_env(tmp_path, 3000)
    head = ScriptDirectory(str(ROOT / "alembic")).get_current_head()
    for _ in range(2):
        result = run([str(ENTRYPOINT), "migrate"], cwd=elsewhere, env=env)
        assert result.returncode == 0, result.stderr
        with sqlite3.connect(tmp_path / "data" / "cnop.db") as db:
            assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(head,)]
            # seed: the catalogue from the bundled snapshot
            assert db.execute("SELECT COUNT(*) FROM assets").fetchone()[0] > 0
    assert not list(elsewhere.iterdir())
