"""Routes for the market feature (being built)."""

from fastapi import APIRouter

router = APIRouter(tags=["market"])
