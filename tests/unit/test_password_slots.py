"""At most `MAX_CONCURRENT_HASHES` argon2 runs at once per process (each holds 19 MiB), for every caller."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from cnop_app.services.auth import passwords


class _Gauge:
    """A stand-in for passlib's context that records how many hashes run at the same time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0

    def _work(self) -> None:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(0.05)
        with self.lock:
            self.running -= 1

    def hash(self, password: str) -> str:
        self._work()
        return "$argon2id$fake"

    def verify(self, password: str, password_hash: str) -> bool:
        self._work()
        return True

    def needs_update(self, password_hash: str) -> bool:
        return False


def test_concurrent_hashes_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    gauge = _Gauge()
    monkeypatch.setattr(passwords, "_pwd", gauge)
    jobs = [lambda: passwords.hash_password("x" * 12), lambda: passwords.verify_password("x" * 12, "h")] * 8
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result(timeout=30)
    assert gauge.peak == passwords.MAX_CONCURRENT_HASHES


def test_a_failing_hash_gives_its_slot_back(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken(_Gauge):
        def verify(self, password: str, password_hash: str) -> bool:
            raise ValueError("not an argon2 hash")

    monkeypatch.setattr(passwords, "_pwd", Broken())
    for _ in range(passwords.MAX_CONCURRENT_HASHES * 3):
        assert passwords.verify_password("x", "garbage") is False
    monkeypatch.setattr(passwords, "_pwd", _Gauge())
    with ThreadPoolExecutor(max_workers=1) as pool:  # a leaked slot would block here
        assert pool.submit(passwords.hash_password, "x").result(timeout=10) == "$argon2id$fake"
