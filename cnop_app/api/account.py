"""/api/v1/account/reset and /api/v1/watchlist: tools of every signed-in user."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from cnop_app.api.deps import client_ip, current_principal
from cnop_app.api.schemas.account import ResetOut, WatchChangeOut, WatchlistOut
from cnop_app.api.schemas.common import errors
from cnop_app.api.trading import DecimalInput
from cnop_app.services import account_reset, auth, watchlist

router = APIRouter(tags=["account"])


class ResetBody(BaseModel):
    # A string keeps every digit; a JSON number is read by its decimal text.
    starting_cash: DecimalInput


@router.post("/account/reset", response_model=ResetOut, responses=errors(401, 404, 413, 422))
def reset(body: ResetBody, request: Request, principal: auth.Principal = Depends(current_principal)) -> ResetOut:
    """Reset the paper account: cancel every open order, close every position at the current price
    (system market sales, with the usual fee) and set the cash to `starting_cash` (0 to 1,000,000,
    whole cents) with a `system_adjustment` ledger entry. History is kept: nothing is deleted."""
    return ResetOut.of(account_reset.reset_account(principal.username, body.starting_cash, ip=client_ip(request)))


@router.get("/watchlist", response_model=WatchlistOut, responses=errors(401))
def get_watchlist(principal: auth.Principal = Depends(current_principal)) -> WatchlistOut:
    """The starred assets, oldest star first, with their current price and 24h change."""
    return WatchlistOut.of(watchlist.list_items(principal.username))


@router.put("/watchlist/{asset_id}", response_model=WatchChangeOut, responses=errors(401, 404, 422))
def star(asset_id: str, principal: auth.Principal = Depends(current_principal)) -> WatchChangeOut:
    """Star an asset (at most 100). Starring it again changes nothing (`changed` false)."""
    added = watchlist.add(principal.username, asset_id)
    items = watchlist.list_items(principal.username)
    key = asset_id.strip().upper()
    return WatchChangeOut.of(f"{key} added to the watchlist" if added else f"{key} is already starred", added, items)


@router.delete("/watchlist/{asset_id}", response_model=WatchChangeOut, responses=errors(401, 422))
def unstar(asset_id: str, principal: auth.Principal = Depends(current_principal)) -> WatchChangeOut:
    """Remove an asset from the watchlist. Not starred: nothing changes (`changed` false)."""
    removed = watchlist.remove(principal.username, asset_id)
    items = watchlist.list_items(principal.username)
    key = asset_id.strip().upper()
    return WatchChangeOut.of(
        f"{key} removed from the watchlist" if removed else f"{key} was not starred", removed, items
    )
