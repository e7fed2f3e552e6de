"""The app loads Radix Themes' colour scales it uses, and only those (cnop_app/theme.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from reflex.compiler.compiler import compile_root_stylesheet

import rxconfig
from cnop_app.theme import ACCENT, GRAY, RADIX, RADIX_SCALES, THEME_COLOURS, CnopRadixThemes, radix_stylesheets

ROOT = Path(__file__).resolve().parents[2]


def _named_in_python() -> dict[str, set[str]]:
    """Radix scale names written as string constants in the app's code (colour_scheme="red",
    rx.color("grass", 11), a status colour), by file."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "cnop_app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in RADIX_SCALES:
                found.setdefault(node.value, set()).add(str(path.relative_to(ROOT)))
    return found


def _named_in_css() -> dict[str, set[str]]:
    """Radix scale variables the app's own stylesheets use (var(--gray-11), var(--tomato-a3))."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "assets").rglob("*.css"):
        for name in re.findall(r"var\(--([a-z]+)-a?\d+", path.read_text()):
            if name in RADIX_SCALES:
                found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_colour_the_app_names_has_its_scale_loaded() -> None:
    named = _named_in_python()
    for name, files in _named_in_css().items():
        named.setdefault(name, set()).update(files)
    # The scan finds the colours the pages are known to use: it reads what it should.
    assert {"red", "grass", "tomato", "violet", "amber"} <= set(named)
    missing = {name: sorted(files) for name, files in named.items() if name not in THEME_COLOURS}
    assert not missing, f"add these scales to cnop_app.theme.THEME_COLOURS: {missing}"


def test_the_theme_uses_listed_scales() -> None:
    assert ACCENT in THEME_COLOURS and GRAY in THEME_COLOURS
    assert "gray" in THEME_COLOURS  # color_scheme="gray" badges and buttons
    assert len(set(THEME_COLOURS)) == len(THEME_COLOURS)
    assert set(THEME_COLOURS) <= RADIX_SCALES
    assert len(RADIX_SCALES) == 31 and "auto" not in RADIX_SCALES


def test_the_stylesheets_are_radix_styles_css_in_its_parts() -> None:
    # styles.css is tokens (the colour scales, then base.css), components, utilities, in that order.
    sheets = radix_stylesheets()
    assert sheets == (
        *(f"{RADIX}/tokens/colors/{colour}.css" for colour in THEME_COLOURS),
        f"{RADIX}/tokens/base.css",
        f"{RADIX}/components.css",
        f"{RADIX}/utilities.css",
    )


def test_the_configured_plugin_compiles_the_parts_into_the_root_stylesheet() -> None:
    plugins = [p for p in rxconfig.config.plugins if isinstance(p, CnopRadixThemes)]
    assert len(plugins) == 1
    theme = str(plugins[0].get_theme())
    assert f'accentColor:"{ACCENT}"' in theme and f'grayColor:"{GRAY}"' in theme
    _path, code = compile_root_stylesheet([], reset_style=False, plugins=plugins)
    imports = re.findall(r"@import url\('([^']+)'\);", code)
    assert imports == list(radix_stylesheets())
    assert "@radix-ui/themes/styles.css" not in code  # the whole sheet, all 31 scales
