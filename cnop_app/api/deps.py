"""Shared dependencies of the REST routes: the caller's identity and address."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import weakref
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from cnop_app.config import get_settings
from cnop_app.db import UnitOfWork, WriterBusy, db_executor, run_batch
from cnop_app.domain import network
from cnop_app.domain.errors import AuthenticationFailed, Forbidden
from cnop_app.observability.metrics import WRITE_BATCH
from cnop_app.read_path import deferring_writes, read_connection, work_on_the_loop
from cnop_app.services import activity, auth

T = TypeVar("T")
bearer = HTTPBearer(auto_error=False, description="The access_token from POST /api/v1/auth/login")


def scope_client_ip(scope: MutableMapping[str, Any]) -> str | None:
    """The client's IP for an ASGI request: `network.client_ip`, the one rule (trusted proxies only)."""
    client = scope.get("client")
    peer = client[0] if client else None
    # Several X-Forwarded-For headers read as one list, in order (RFC 9110 field combination).
    hops = [value for name, value in scope.get("headers", ()) if name == b"x-forwarded-for"]
    forwarded = b",".join(hops).decode("latin-1") if hops else None
    return network.client_ip(peer, forwarded, get_settings().trusted_networks)


def client_ip(request: Request) -> str | None:
    return scope_client_ip(request.scope)


def principal_of(
    credentials: HTTPAuthorizationCredentials | None, known: auth.SessionRows | None = None
) -> auth.Principal:
    """The verified caller (blocking: reads the session row, unless `known` holds it)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationFailed("Not authenticated")
    principal = auth.authenticate(credentials.credentials, known)
    activity.record_user(principal.username)
    return principal


def current_principal(
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> auth.Principal:
    return principal_of(credentials)


class _VerifiedBearer(HTTPBearer):
    """The bearer token, present and well signed (no I/O: runs on the event loop, no thread hop).

    As with `current_principal`, a missing or forged token is a 401 before the body is validated; the
    session and the user are checked by `as_caller` in the route's one thread hop."""

    async def __call__(self, request: Request) -> HTTPAuthorizationCredentials:  # type: ignore[override]
        credentials = await super().__call__(request)
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise AuthenticationFailed("Not authenticated")
        auth.verify_token(credentials.credentials)
        return credentials


# Same scheme name as `bearer`: one security scheme in the OpenAPI document.
verified_bearer = _VerifiedBearer(auto_error=False, scheme_name="HTTPBearer", description=bearer.model.description)
Credentials = Annotated[HTTPAuthorizationCredentials, Depends(verified_bearer)]
# The OpenAPI security requirement of a route that checks `verified_bearer` itself (`as_caller`).
BEARER_REQUIRED: dict[str, Any] = {"security": [{verified_bearer.scheme_name: []}]}


async def as_caller(request: Request, work: Callable[[auth.Principal], T]) -> T:
    """Authenticate the caller and run the read-only `work(principal)` in ONE unit: on the event loop
    on SQLite, else in ONE database-thread hop (`reading`). For GET routes with no parameters: they
    declare `openapi_extra=BEARER_REQUIRED` (the token is checked here, not by a dependency).

    Hot routes use this instead of `Depends(current_principal)` + a sync endpoint, which FastAPI runs as
    two thread-pool hops, each waking the event loop: on the order path that was most of the request.
    Awaiting `verified_bearer` here rather than declaring it saves FastAPI's solving of a
    sub-dependency, a tenth of a balance request. The context (request id, client address) goes
    along, so audit rows and logs keep naming them."""
    credentials = await verified_bearer(request)
    keep = work_on_the_loop()

    def run() -> T:
        # The session check and the route's reads share one connection (kept by the loop's thread).
        with read_connection(keep=keep):
            return work(principal_of(credentials))

    return await reading(run)


def rendered(body: BaseModel, status_code: int = 200) -> JSONResponse:
    """A route's own response model, rendered as FastAPI renders a `response_model` (`model_dump` in
    JSON mode, by alias, then JSONResponse), without FastAPI validating the model a second time.
    `status_code`: the route's declared one (FastAPI applies it only to what it renders itself)."""
    return JSONResponse(body.model_dump(mode="json", by_alias=True), status_code=status_code)


async def reading(work: Callable[[], T]) -> T:
    """Run a read-only unit of work where reads are cheapest (`read_path.work_on_the_loop`): inline on
    SQLite, else in one hop to the database thread. A write the read makes on the way (the audit row
    of a revoked token) is run on the database thread, before the answer, not on the loop."""
    if not work_on_the_loop():
        return await in_db_thread(work)
    error: Exception | None = None
    # Nothing is awaited inside the block: the collection is this thread's, and other requests run
    # on the loop while this one awaits its writes.
    with deferring_writes() as writes:
        try:
            result = work()
        except Exception as exc:
            error = exc
    for write in writes:
        await in_db_thread(write)
    if error is not None:
        raise error
    return result


async def in_db_thread(work: Callable[[], T]) -> T:
    """Run blocking database work in the database executor (`db.db_executor`), in one hop."""
    context = contextvars.copy_context()  # request id and client address, as anyio's hop carries them
    return await asyncio.get_running_loop().run_in_executor(db_executor(), context.run, work)


@dataclass(frozen=True, slots=True)
class _Queued:
    username: str
    jti: str
    job: Callable[[auth.SessionRows | None], Callable[[UnitOfWork], Any]]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


class _WriteBatcher:
    """Group commit for the API's writes. Requests queue here; one drain takes every write queued at
    that moment (up to MAX_BATCH), authenticates them all (their sessions read in one statement),
    runs them in one transaction (`db.run_batch`) and commits once; each request gets its own result
    or its own error. Ordered by account so that concurrent batches lock accounts in the same order
    (PostgreSQL: no deadlock between instances).

    Where it drains: on SQLite (`read_path.work_on_the_loop`), on the event loop itself, right after the
    requests that queued, when the writer is free; if another thread or process is writing, that batch
    waits for it on the database thread, and the drain then comes back to the loop. On PostgreSQL,
    always on the database thread."""

    MAX_BATCH = 64

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[_Queued] = []
        self._draining = False

    async def submit(
        self, credentials: HTTPAuthorizationCredentials, work: Callable[[auth.Principal, UnitOfWork], T]
    ) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        jti, username = auth.verify_token(credentials.credentials)  # memoised: the account, for ordering
        context = contextvars.copy_context()  # request id and client address go along

        def job(known: auth.SessionRows | None) -> Callable[[UnitOfWork], T]:
            principal = context.run(principal_of, credentials, known)  # outside the transaction: may audit
            return lambda uow: context.run(work, principal, uow)

        with self._lock:
            self._pending.append(_Queued(username, jti, job, future, loop))
            start = not self._draining
            self._draining = True
        if start:
            if work_on_the_loop():
                loop.call_soon(self._drain_on_loop)  # after the requests ready now have queued
            else:
                db_executor().submit(self._drain)
        return await future

    def _take(self) -> list[_Queued]:
        """The next batch, in account order; none left: the drain ends."""
        with self._lock:
            batch, self._pending = self._pending[: self.MAX_BATCH], self._pending[self.MAX_BATCH :]
            if not batch:
                self._draining = False
        batch.sort(key=lambda item: item.username)
        return batch

    def _drain(self) -> None:
        """On the database thread (PostgreSQL): every batch queued, until none is left."""
        while batch := self._take():
            self._commit(self._authenticate(batch, on_loop=False), wait=True)

    def _commit_then_back_to_the_loop(self, ready: list[_Ready], loop: asyncio.AbstractEventLoop) -> None:
        """On the database thread: commit a batch the loop found the writer busy for (waiting for it),
        then hand the drain back to the loop. Only this batch: the writer is mostly busy for a moment
        (the mirror's bookkeeping, a refresh), and the next batches are cheaper on the loop."""
        try:
            self._commit(ready, wait=True)
        finally:
            if self._more() and not loop.is_closed():
                loop.call_soon_threadsafe(self._drain_on_loop)

    def _more(self) -> bool:
        """Whether writes are queued; if not, the drain ends here (the next write starts one): a drain
        never ends in a callback that a stopped loop might not run."""
        with self._lock:
            if not self._pending:
                self._draining = False
                return False
            return True

    def _drain_on_loop(self) -> None:
        """One batch on the event loop, then the next one in a later turn of the loop."""
        batch = self._take()
        if not batch:
            return
        ready: list[_Ready] = []
        try:
            ready = self._authenticate(batch, on_loop=True)
            self._commit(ready, wait=False)
        except WriterBusy:  # nothing ran: this batch waits for the writer on the database thread
            db_executor().submit(self._commit_then_back_to_the_loop, ready, asyncio.get_running_loop())
            return
        except Exception as exc:  # a bug: answer the batch rather than leave it waiting
            for item in batch:
                _answer(item, False, exc)
        if self._more():
            asyncio.get_running_loop().call_soon(self._drain_on_loop)

    def _authenticate(self, batch: list[_Queued], on_loop: bool) -> list[_Ready]:
        """Each request's work, bound to its verified caller; a refused one is answered here."""
        try:
            known: auth.SessionRows | None = auth.read_sessions(item.jti for item in batch)
        except Exception:  # each request then reads its own session, and fails on its own
            known = None
        ready: list[_Ready] = []
        refused: list[tuple[_Queued, Exception]] = []
        with deferring_writes() as writes:  # the audit row of a revoked token presented again
            for item in batch:
                try:
                    ready.append((item.job(known), item))
                except Exception as exc:  # authentication refused: this request only
                    refused.append((item, exc))
        if writes and on_loop:  # written on the database thread, then the 401s
            db_executor().submit(_write_then_refuse, writes, refused)
        else:
            _write_then_refuse(writes, refused)
        return ready

    @staticmethod
    def _commit(ready: list[_Ready], wait: bool) -> None:
        if not ready:
            return
        outcomes = run_batch([work for work, _item in ready], wait=wait)
        WRITE_BATCH.observe(len(ready))
        for (_work, item), (ok, value) in zip(ready, outcomes, strict=True):
            _answer(item, ok, value)


_Ready = tuple[Callable[[UnitOfWork], Any], _Queued]


def _write_then_refuse(writes: list[Callable[[], None]], refused: list[tuple[_Queued, Exception]]) -> None:
    for write in writes:
        write()
    for item, exc in refused:
        _answer(item, False, exc)


def _answer(item: _Queued, ok: bool, value: Any) -> None:
    """Settle a request's future on its loop, from any thread. A loop that has stopped (a worker
    shutting down) has nobody waiting: nothing to do, and the drain goes on."""
    try:
        item.loop.call_soon_threadsafe(_settle, item.future, ok, value)
    except RuntimeError:  # the loop is closed
        pass


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # cancelled: the client went away; its order stands, as it would have unbatched
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


# One batcher per event loop: a worker has one; tests and tools that run several loops in one process
# must not queue a request on a loop that has stopped.
_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _WriteBatcher] = weakref.WeakKeyDictionary()


async def as_caller_writing(
    credentials: HTTPAuthorizationCredentials, work: Callable[[auth.Principal, UnitOfWork], T]
) -> T:
    """Like `as_caller`, for a write: `work(principal, uow)` joins the current group commit."""
    loop = asyncio.get_running_loop()
    batcher = _batchers.get(loop)
    if batcher is None:
        batcher = _batchers[loop] = _WriteBatcher()
    return await batcher.submit(credentials, work)


def admin_principal(principal: auth.Principal = Depends(current_principal)) -> auth.Principal:
    if not principal.is_admin:
        raise Forbidden("Admin role required")
    return principal
