"""The app's Radix Themes setup: its theme, and the stylesheets of only the colour scales it uses.

Radix Themes' `styles.css` carries all 31 colour scales (light, dark and wide-gamut values each):
153 KB of its 813 KB, in the stylesheet every visitor downloads and every page load parses. The app
uses ten. Radix ships the same stylesheet in parts (`tokens/colors/<scale>.css`, `tokens/base.css`,
`components.css`, `utilities.css`); the plugin imports those in `styles.css`'s own order, with the
scales in `THEME_COLOURS` only. A colour the app names must be listed there:
`tests/ui/test_theme_colours.py` reads every colour the code and the stylesheets name.
"""

from __future__ import annotations

from typing import Any, get_args

import reflex as rx
from reflex.plugins import RadixThemesPlugin
from reflex_components_radix.themes.base import LiteralAccentColor, LiteralGrayColor

ACCENT = "indigo"
# Radix's "auto" grey for indigo, named so that the theme and the list below cannot disagree.
GRAY = "slate"
# In Radix's own file order (greys, then accents alphabetically): every colour a page, badge or chart names.
THEME_COLOURS = ("gray", GRAY, "amber", "blue", "grass", "green", ACCENT, "red", "tomato", "violet")
RADIX = "@radix-ui/themes"
# Every scale Radix Themes has (accents and greys; "auto" is not one).
RADIX_SCALES = frozenset(get_args(LiteralAccentColor) + get_args(LiteralGrayColor)) - {"auto"}


def radix_stylesheets() -> tuple[str, ...]:
    """`styles.css` in its parts: the app's colour scales, the base tokens, the components, the utilities."""
    return (
        *(f"{RADIX}/tokens/colors/{colour}.css" for colour in THEME_COLOURS),
        f"{RADIX}/tokens/base.css",
        f"{RADIX}/components.css",
        f"{RADIX}/utilities.css",
    )


class CnopRadixThemes(RadixThemesPlugin):
    """Reflex's Radix Themes plugin with the app's theme and only the colour scales it uses."""

    def get_stylesheet_paths(self, **context: Any) -> tuple[str, ...]:
        return radix_stylesheets() if self.enabled else ()


def radix_themes() -> CnopRadixThemes:
    """The plugin `rxconfig.py` installs: the app's theme (light or dark as the browser prefers)."""
    return CnopRadixThemes(theme=rx.theme(appearance="inherit", accent_color=ACCENT, gray_color=GRAY, radius="medium"))
