"""The CNOP Reflex app: pages, the REST API (api_transformer) and start-up tasks."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import reflex as rx

from cnop_app.api import create_api
from cnop_app.config import get_settings
from cnop_app.observability.logging import configure_logging
from cnop_app.pages import account, auth, profile
from cnop_app.services import auth as auth_service
from cnop_app.state.account import AccountState
from cnop_app.state.auth import AuthState
from cnop_app.state.profile import ProfileState

settings = get_settings()
configure_logging(settings.log_level, settings.log_json)

app = rx.App(
    api_transformer=create_api(),
    theme=rx.theme(appearance="inherit", accent_color="indigo", radius="medium"),
    toaster=rx.toast.provider(position="bottom-right", close_button=True),
)


@asynccontextmanager
async def bootstrap() -> AsyncIterator[None]:
    # Idempotent: the admin named by CNOP_ADMIN_USERNAME/PASSWORD exists in every worker's view.
    auth_service.bootstrap_admin()
    yield


app.register_lifespan_task(bootstrap)

app.add_page(auth.landing, route="/", title="CNOP · Paper trading", on_load=AuthState.load_session)
app.add_page(auth.login, route="/login", title="Log in · CNOP", on_load=AuthState.redirect_if_signed_in)
app.add_page(auth.register, route="/register", title="Sign up · CNOP", on_load=AuthState.redirect_if_signed_in)
app.add_page(account.account, route="/account", title="Account · CNOP", on_load=AccountState.load)
app.add_page(profile.profile, route="/profile", title="Profile · CNOP", on_load=ProfileState.load)
