"""GET /api/v1/inventory/assets/{asset_id}/logo: the coin logo CNOP cached from the feed.

The pages show these instead of hot-linking the feed's CDN (`img-src 'self'`). Not part of the JSON
API's documented contract (binary, for the web UI): left out of /openapi.json.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from cnop_app.domain.errors import NotFound
from cnop_app.services import validation
from cnop_app.services.market import logos

router = APIRouter(tags=["market"])
LOGO_PATH = "/inventory/assets/{asset_id}/logo"
PUBLIC_PREFIX = "/api/v1"  # where create_api mounts this router
# Versioned URLs (?v=<hash>): a browser may keep a logo for good; a new logo gets a new URL.
CACHE_CONTROL = "public, max-age=31536000, immutable"


def logo_url(asset_id: str) -> str:
    """The page's image URL for an asset: its cached logo, or "" (the letter avatar) while there is none."""
    digest = logos.version(asset_id)
    if digest is None:
        return ""
    return PUBLIC_PREFIX + LOGO_PATH.format(asset_id=asset_id) + f"?v={digest}"


@router.get(LOGO_PATH, include_in_schema=False)
def asset_logo(asset_id: str) -> Response:
    logo = logos.get_logo(validation.asset_id(asset_id))
    if logo is None:
        raise NotFound("No logo cached for this asset")
    return Response(
        logo.data,
        media_type=logo.content_type,
        headers={"Cache-Control": CACHE_CONTROL, "ETag": f'"{logo.sha256[:32]}"'},
    )
