"""Drive Reflex states directly: a state as one browser tab sees it, a signed-in user, and what an
event returned (redirects, toasts)."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any, TypeVar

import reflex as rx
from reflex.istate.data import HeaderData, ReflexURL, RouterData, SessionData

from cnop_app.api.session_cookie import COOKIE_NAME as TOKEN_COOKIE
from cnop_app.services import auth, market
from cnop_app.state.auth import AuthState
from cnop_app.state.market import snapshot
from tests.support.helpers import STRONG_PASSWORD, user_payload
from tests.support.trading_fixtures import add_asset, fund

S = TypeVar("S", bound=rx.State)


def router(path: str, token: str = "", sid: str = "socket-1") -> RouterData:
    """What Reflex knows of a tab at `path` whose websocket handshake carried the session cookie `token`."""
    return RouterData(
        url=ReflexURL(f"http://localhost:3000{path}"),
        headers=HeaderData(user_agent="pytest-browser", cookie=f"theme=dark; {TOKEN_COOKIE}={token}" if token else ""),
        session=SessionData(client_ip="127.0.0.1", session_id=sid),
    )


def tab(state_cls: type[S], path: str, token: str = "") -> S:
    """A state of a browser tab at `path` (query string allowed) holding the cookie `token`."""
    state = state_cls()
    state.router = router(path, token)
    return state


def session_token(state: AuthState) -> str:
    """The token the tab's events use now ("" when signed out)."""
    return state._session_token()


def app_tree(path: str, token: str = "") -> rx.State:
    """The whole state tree of one tab, as the state manager keeps it (every page's state under one root)."""
    root = rx.State(_reflex_internal_init=True)
    root.router = router(path, token)
    return root


def substate(root: rx.State, state_cls: type[S]) -> S:
    return root.get_substate(state_cls.get_full_name().split("."))  # type: ignore[return-value]


def sign_up(username: str, cash: str = "0") -> str:
    """Register (and fund, bypassing the daily limit) a user; returns a session token for the cookie."""
    auth.register(user_payload(username))
    if Decimal(cash) > 0:
        fund(username, cash)
    return auth.login(username, STRONG_PASSWORD, user_agent="pytest-browser").access_token


def listed_asset(asset_id: str, price: str) -> None:
    """An active asset at `price`, visible to the ticket at once (caches dropped)."""
    add_asset(asset_id, price, name=f"{asset_id.title()} coin")
    market.clear_cache()
    snapshot.clear()


# rx.toast.<level>(message) is a call of the toaster in the browser: refs['__toast']?.["success"]("...").
_TOAST = re.compile(r"""__toast'\]\?\.\["(?P<level>\w+)"\]\((?P<message>".*?(?<!\\)")""")


def _arg_var(spec: rx.event.EventSpec, name: str) -> Any:
    for key, value in spec.args:
        if str(key) == name:
            return value
    return None


def _arg(spec: rx.event.EventSpec, name: str) -> Any:
    value = _arg_var(spec, name)
    if value is None:
        raise AssertionError(f"{spec} has no argument {name}")
    return value._var_value


def redirect_target(result: Any) -> str:
    """The path of the redirect among the events a handler returned."""
    specs = result if isinstance(result, list) else [result]
    for spec in specs:
        if isinstance(spec, rx.event.EventSpec) and spec.handler.fn.__qualname__ == "_redirect":
            return _arg(spec, "path")
    raise AssertionError(f"no redirect in {result}")


def toasts(result: Any) -> list[tuple[str, str]]:
    """The (level, message) of each toast among the events a handler returned."""
    specs = result if isinstance(result, list) else [result]
    found = []
    for spec in specs:
        if isinstance(spec, rx.event.EventSpec):
            match = _TOAST.search(str(_arg_var(spec, "function")))
            if match:
                found.append((match["level"], json.loads(match["message"])))
    return found
