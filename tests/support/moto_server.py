"""moto's real DynamoDB server as a separate process on a free loopback port.

Requests are recorded (moto's recorder) so `restart()` can bring the server back WITH its data,
like a real DynamoDB outage: the process is killed, a new one starts on the same port and
replays the recording.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.helpers import free_port

MOTO_SERVER = Path(sys.executable).with_name("moto_server")
START_TIMEOUT_SECONDS = 30


class MotoServer:
    def __init__(self, workdir: Path, port: int | None = None, record: bool = True) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.record = record
        self.recording = workdir / f"moto-{self.port}.jsonl"
        self.log = workdir / f"moto-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = dict(os.environ)
        env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
        if self.record:
            env.update({"MOTO_ENABLE_RECORDING": "True", "MOTO_RECORDER_FILEPATH": str(self.recording)})
        command = [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(self.port)]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.process.returncode}: {self.log.read_text()}")
            try:
                httpx.get(f"{self.endpoint}/moto-api/", timeout=1)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not answer in time") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Kill the server (an outage: nothing is flushed, connections just fail)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        """Start again on the same port and replay the recorded requests (the data comes back).

        Nothing may write to the server until this returns: moto replays a copy of the recording taken
        when the replay starts, with recording off, so a write made meanwhile is overwritten by an older
        replayed one and is not recorded either (a real DynamoDB has no such window)."""
        self.stop()
        self.start()
        if self.record and self.recording.exists():
            httpx.post(f"{self.endpoint}/moto-api/recorder/replay-recording", timeout=600).raise_for_status()


@pytest.fixture
def moto_server(tmp_path: Path) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
