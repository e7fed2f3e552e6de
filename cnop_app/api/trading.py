"""Routes for the trading feature (being built)."""

from fastapi import APIRouter

router = APIRouter(tags=["trading"])
