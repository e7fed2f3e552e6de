"""The CNOP Reflex app: pages, the REST API (api_transformer) and start-up tasks."""

import reflex as rx

from cnop_app.api import create_api

app = rx.App(
    api_transformer=create_api(),
    theme=rx.theme(appearance="inherit", accent_color="indigo", radius="medium"),
)


def index() -> rx.Component:
    return rx.text("CNOP")


app.add_page(index, route="/")
