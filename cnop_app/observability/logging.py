"""Structured JSON logs carrying the current request id.

A line holds ts, level, logger, msg, request_id (inside a request), the record's `extra` fields, and
exc (the traceback) / stack when the record has them.
"""

from __future__ import annotations

import contextvars
import logging
import os
import sys
from datetime import datetime, timezone
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter as _LibraryJsonFormatter

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("cnop_request_id", default=None)


def new_request_id() -> str:
    """A fresh request id: 128 random bits as 32 hex digits (uuid4's length, without building a UUID,
    which cost more than the random bytes on every API request)."""
    return os.urandom(16).hex()


_RENAMED = {"levelname": "level", "name": "logger", "message": "msg", "exc_info": "exc", "stack_info": "stack"}


class JsonFormatter(_LibraryJsonFormatter):
    def __init__(self) -> None:
        super().__init__(["levelname", "name", "message"], rename_fields=_RENAMED)

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        log_data["ts"] = datetime.fromtimestamp(record.created, timezone.utc).isoformat()
        super().add_fields(log_data, record, message_dict)
        request_id = request_id_var.get()
        if request_id:
            log_data["request_id"] = request_id


def _drop_empty_exc_info(record: logging.LogRecord) -> bool:
    if record.exc_info and record.exc_info[0] is None:
        # exc_info=True outside an except block: no exception, so no "NoneType: None" in place of a traceback.
        record.exc_info = None
    return True


def make_handler(json_logs: bool = True, stream: TextIO | None = None) -> logging.Handler:
    """A stderr (or `stream`) handler writing JSON lines, or plain text when `json_logs` is false."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_drop_empty_exc_info)
    handler.setFormatter(JsonFormatter() if json_logs else logging.Formatter("%(levelname)s %(name)s %(message)s"))
    return handler


_configured = False


def configure_logging(level: str = "INFO", json_logs: bool = True) -> None:
    """Install one handler on the `cnop` logger tree (idempotent)."""
    global _configured
    logger = logging.getLogger("cnop")
    logger.setLevel(level)
    if _configured:
        return
    logger.addHandler(make_handler(json_logs))
    logger.propagate = False
    _configured = True


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"cnop.{name}")
