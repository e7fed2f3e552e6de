"""The backend server's settings (cnop_app/server.py) as rxconfig.py hands them to Reflex and gunicorn."""

from __future__ import annotations

import pytest

from cnop_app.server import MAX_WORKERS, WORKER_CLASS, gunicorn_args, worker_count


def test_gunicorn_runs_cnops_worker_and_keeps_the_operators_arguments_after_it() -> None:
    assert gunicorn_args() == f"--worker-class {WORKER_CLASS} --keep-alive 5"
    # gunicorn lets the last of a repeated option win: the operator's come last.
    assert gunicorn_args("--timeout 60").endswith("--keep-alive 5 --timeout 60")


def test_gunicorn_args_are_set_once_however_often_the_config_is_read() -> None:
    once = gunicorn_args("--timeout 60")
    assert gunicorn_args(once) == once


@pytest.mark.parametrize(
    ("environ", "shared", "cpus", "expected"),
    [
        ({}, False, 2, "1"),  # in-memory UI state: one process
        ({}, True, 2, "5"),  # shared UI state: Reflex's rule, two per core and one
        ({}, True, 16, str(MAX_WORKERS)),
        ({"WEB_CONCURRENCY": "3"}, True, 2, "3"),
        ({"GRANIAN_WORKERS": "2"}, True, 2, "2"),  # the name earlier releases read
        ({"WEB_CONCURRENCY": "4", "GRANIAN_WORKERS": "2"}, True, 2, "4"),
        ({"WEB_CONCURRENCY": " ", "GRANIAN_WORKERS": ""}, False, 2, "1"),
    ],
)
def test_worker_count(environ: dict[str, str], shared: bool, cpus: int, expected: str) -> None:
    assert worker_count(environ, shared, cpus) == expected
