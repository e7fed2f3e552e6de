"""Orders: market and limit, cancel, expiry, the limit-order matcher. Exact and atomic.

Every order runs in ONE write transaction with the user's account row locked (`lock_account`):
checks, the order row, ledger entries, the holding, the asset transaction, the idempotency record
and the outbox rows commit together or not at all.

Money rules (all Decimal, money in whole cents):
- buy: gross = quantity x price rounded UP to the cent (the buyer never pays less than the exact value);
- sell: gross = quantity x price rounded DOWN to the cent (the seller never receives more);
- fee = gross x CNOP_FEE_BPS / 10000 rounded UP to the cent, its own `fee` ledger entry (a sell's fee is
  capped at its gross so a sale never costs money);
- a buy posts `order_payment` -gross (+ `fee` -fee); a sell posts `order_sale` +gross (+ `fee` -fee).
- Holds are NOT ledger entries: a limit buy reserves cash in `Account.held` (and `Order.held_amount`),
  a limit sell reserves quantity in `Holding.held_quantity`. Cash only moves when an order fills, so
  cash == sum(ledger) always, `held` == sum of pending buy orders' `held_amount`, and cash >= held >= 0.
  A limit buy holds exactly what its fill costs (gross at the limit price + the fee fixed at placement).
- Holdings keep a weighted average cost that includes buy fees (18 decimals); a sell realizes
  (gross - fee) - average_cost x quantity, rounded half-even to the cent.
- Quantities: at least 0.001, at most 8 decimals. Limit prices: 0 < p <= 1,000,000, at most 8 decimals.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Context, Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from cnop_app.config import get_settings
from cnop_app.db import read_session, write_session
from cnop_app.domain.errors import BusinessRuleViolation, Conflict, NotFound, ValidationFailed
from cnop_app.domain.money import CENT, decimal_str, money_str, parse_decimal
from cnop_app.models import Account, Asset, AssetTransaction, Holding, Order, utcnow
from cnop_app.observability.logging import get_logger
from cnop_app.services import idempotency, outbox, validation
from cnop_app.services.accounts import lock_account, post_entry

ORDER_TYPES = ("market_buy", "market_sell", "limit_buy", "limit_sell")
STATUSES = ("pending", "completed", "cancelled", "expired", "rejected")
MIN_QUANTITY = Decimal("0.001")
MAX_QUANTITY = Decimal("1000000000000")
QUANTITY_PLACES = 8
PRICE_PLACES = 8
MAX_LIMIT_PRICE = Decimal("1000000")
MAX_CLIENT_ORDER_ID = 64
MAX_PAGE = 500
AVG_COST_STEP = Decimal("1e-18")  # NUMERIC(38, 18) on PostgreSQL: store nothing finer
BPS = Decimal(10000)

# Products and quotients get enough digits that the only rounding is the explicit one.
_EXACT = Context(prec=80)
_log = get_logger("trading")


@dataclass(frozen=True)
class OrderRequest:
    order_type: str
    asset_id: str
    quantity: Decimal
    limit_price: Decimal | None
    expires_at: datetime | None
    client_order_id: str | None

    @property
    def is_buy(self) -> bool:
        return self.order_type.endswith("_buy")

    @property
    def is_limit(self) -> bool:
        return self.order_type.startswith("limit_")

    def fingerprint(self) -> dict[str, Any]:
        return {
            "order_type": self.order_type,
            "asset_id": self.asset_id,
            "quantity": decimal_str(self.quantity),
            "price": decimal_str(self.limit_price),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "client_order_id": self.client_order_id,
        }


@dataclass(frozen=True)
class OrderView:
    order_id: str
    client_order_id: str | None
    username: str
    asset_id: str
    order_type: str
    status: str
    quantity: Decimal
    price: Decimal | None  # executed price once filled, else the limit price
    limit_price: Decimal | None
    executed_price: Decimal | None
    total_amount: Decimal  # gross value (estimate at the limit price while pending)
    fee: Decimal
    net_amount: Decimal  # cash that moved (or will move): buy gross + fee, sell gross - fee
    held_amount: Decimal
    expires_at: datetime | None
    reject_reason: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None

    @property
    def is_buy(self) -> bool:
        return self.order_type.endswith("_buy")

    def as_dict(self) -> dict[str, Any]:
        """JSON shape: money as 2-decimal strings, quantities and prices as exact strings."""
        return {
            "order_id": self.order_id,
            "client_order_id": self.client_order_id,
            "order_type": self.order_type,
            "asset_id": self.asset_id,
            "quantity": decimal_str(self.quantity),
            "price": decimal_str(self.price),
            "limit_price": decimal_str(self.limit_price),
            "executed_price": decimal_str(self.executed_price),
            "status": self.status,
            "total_amount": money_str(self.total_amount),
            "fee": money_str(self.fee),
            "net_amount": money_str(self.net_amount),
            "held_amount": money_str(self.held_amount),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "reject_reason": self.reject_reason,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
        }


@dataclass(frozen=True)
class FillView:
    id: int
    order_id: str
    asset_id: str
    transaction_type: str
    quantity: Decimal
    price: Decimal
    total_amount: Decimal
    fee: Decimal
    status: str
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "transaction_id": str(self.id),
            "order_id": self.order_id,
            "asset_id": self.asset_id,
            "transaction_type": self.transaction_type,
            "quantity": decimal_str(self.quantity),
            "price": decimal_str(self.price),
            "total_amount": money_str(self.total_amount),
            "fee": money_str(self.fee),
            "status": self.status,
            "timestamp": self.created_at.isoformat(),
        }


# ---------------------------------------------------------------- exact arithmetic


def buy_gross(quantity: Decimal, price: Decimal) -> Decimal:
    """What a buyer pays before fee: the exact value rounded up to the cent."""
    return _EXACT.multiply(quantity, price).quantize(CENT, rounding=ROUND_CEILING)


def sell_gross(quantity: Decimal, price: Decimal) -> Decimal:
    """What a seller receives before fee: the exact value rounded down to the cent."""
    return _EXACT.multiply(quantity, price).quantize(CENT, rounding=ROUND_FLOOR)


def fee_for(gross: Decimal, fee_bps: Decimal | None = None) -> Decimal:
    bps = get_settings().fee_bps if fee_bps is None else fee_bps
    if bps <= 0:
        return Decimal("0.00")
    return _EXACT.divide(_EXACT.multiply(gross, bps), BPS).quantize(CENT, rounding=ROUND_CEILING)


def _sell_fee(gross: Decimal) -> Decimal:
    return min(fee_for(gross), gross)


def _net(order: Order) -> Decimal:
    return order.total_amount + order.fee if order.order_type.endswith("_buy") else order.total_amount - order.fee


# ---------------------------------------------------------------- input


def _parse_quantity(value: object) -> Decimal:
    quantity = parse_decimal(value, "quantity", max_places=QUANTITY_PLACES)
    if quantity <= 0:
        raise ValidationFailed("quantity must be greater than 0", "quantity")
    if quantity < MIN_QUANTITY:
        raise ValidationFailed(f"quantity must be at least {MIN_QUANTITY}", "quantity")
    if quantity > MAX_QUANTITY:
        raise ValidationFailed("quantity is too large", "quantity")
    return quantity


def _parse_price(value: object) -> Decimal:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValidationFailed("price is required for limit orders", "price")
    price = parse_decimal(value, "price", max_places=PRICE_PLACES)
    if price <= 0:
        raise ValidationFailed("price must be greater than 0", "price")
    if price > MAX_LIMIT_PRICE:
        raise ValidationFailed("price must be at most 1,000,000", "price")
    return price


def _parse_expiry(value: object, now: datetime) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValidationFailed("expires_at must be an ISO 8601 date-time", "expires_at") from exc
    if not isinstance(value, datetime):
        raise ValidationFailed("expires_at must be an ISO 8601 date-time", "expires_at")
    expires_at = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    if expires_at <= now:
        raise ValidationFailed("expires_at must be in the future", "expires_at")
    return expires_at


def _parse_client_order_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > MAX_CLIENT_ORDER_ID:
        raise ValidationFailed(f"client_order_id must be 1-{MAX_CLIENT_ORDER_ID} characters", "client_order_id")
    return value.strip()


def parse_order_request(data: dict[str, Any], now: datetime | None = None) -> OrderRequest:
    """Validate the shape of an order (no database). A market order ignores price and expires_at."""
    now = now or utcnow()
    order_type = data.get("order_type")
    if not isinstance(order_type, str) or order_type.strip().lower() not in ORDER_TYPES:
        raise ValidationFailed("order_type must be one of " + ", ".join(ORDER_TYPES), "order_type")
    order_type = order_type.strip().lower()
    asset_id = validation.asset_id(data.get("asset_id"))
    quantity = _parse_quantity(data.get("quantity"))
    is_limit = order_type.startswith("limit_")
    limit_price = _parse_price(data.get("price")) if is_limit else None
    expires_at = _parse_expiry(data.get("expires_at"), now) if is_limit else None
    return OrderRequest(
        order_type=order_type,
        asset_id=asset_id,
        quantity=quantity,
        limit_price=limit_price,
        expires_at=expires_at,
        client_order_id=_parse_client_order_id(data.get("client_order_id")),
    )


# ---------------------------------------------------------------- views


def _view(order: Order) -> OrderView:
    return OrderView(
        order_id=order.order_id,
        client_order_id=order.client_order_id,
        username=order.username,
        asset_id=order.asset_id,
        order_type=order.order_type,
        status=order.status,
        quantity=order.quantity,
        price=order.executed_price if order.executed_price is not None else order.limit_price,
        limit_price=order.limit_price,
        executed_price=order.executed_price,
        total_amount=order.total_amount,
        fee=order.fee,
        net_amount=_net(order),
        held_amount=order.held_amount,
        expires_at=order.expires_at,
        reject_reason=order.reject_reason,
        created_at=order.created_at,
        updated_at=order.updated_at,
        completed_at=order.completed_at,
    )


def _fill_view(tx: AssetTransaction) -> FillView:
    return FillView(
        id=tx.id or 0,
        order_id=tx.order_id,
        asset_id=tx.asset_id,
        transaction_type=tx.transaction_type,
        quantity=tx.quantity,
        price=tx.price,
        total_amount=tx.total_amount,
        fee=tx.fee,
        status=tx.status,
        created_at=tx.created_at,
    )


# ---------------------------------------------------------------- the write path


def _holding(session: Session, username: str, asset_id: str, now: datetime) -> Holding:
    holding = session.get(Holding, (username, asset_id))
    if holding is None:
        holding = Holding(username=username, asset_id=asset_id, created_at=now, updated_at=now)
    return holding


def _free_quantity_or_fail(holding: Holding | None, quantity: Decimal, asset_id: str) -> None:
    owned = holding.quantity if holding else Decimal(0)
    held = holding.held_quantity if holding else Decimal(0)
    free = owned - held
    if quantity > free:
        raise BusinessRuleViolation(
            f"Insufficient {asset_id}: available {decimal_str(free)}, short by {decimal_str(quantity - free)}",
            "quantity",
        )


def _free_cash_or_fail(account: Account, needed: Decimal) -> None:
    available = account.cash - account.held
    if needed > available:
        raise BusinessRuleViolation(
            f"Insufficient funds: available ${money_str(available)}, short by ${money_str(needed - available)}",
            "quantity",
        )


def _emit_holding(session: Session, holding: Holding) -> None:
    outbox.emit(session, "holding", f"{holding.username}#{holding.asset_id}", holding)


def _fill(session: Session, account: Account, order: Order, price: Decimal, now: datetime) -> None:
    """Execute `order` at `price`: cash, holding, fill row and order status. The account is locked."""
    holding = _holding(session, order.username, order.asset_id, now)
    is_limit = order.order_type.startswith("limit_")
    quantity = order.quantity
    if order.order_type.endswith("_buy"):
        gross = buy_gross(quantity, price)
        fee = order.fee if is_limit else fee_for(gross)
        if is_limit:
            # The hold is exactly this cost; releasing it and paying happen in the same transaction.
            account.held -= order.held_amount
            order.held_amount = Decimal(0)
        else:
            _free_cash_or_fail(account, gross + fee)
        post_entry(
            session,
            account,
            "order_payment",
            -gross,
            reference=order.order_id,
            description=f"Buy {decimal_str(quantity)} {order.asset_id} @ {decimal_str(price)}",
            now=now,
        )
        if fee > 0:
            post_entry(session, account, "fee", -fee, reference=order.order_id, description="Trading fee", now=now)
        new_quantity = holding.quantity + quantity
        cost = _EXACT.add(_EXACT.multiply(holding.average_cost, holding.quantity), gross + fee)
        holding.average_cost = _EXACT.divide(cost, new_quantity).quantize(AVG_COST_STEP, rounding=ROUND_HALF_EVEN)
        holding.quantity = new_quantity
        tx_type = "BUY"
    else:
        gross = sell_gross(quantity, price)
        fee = min(order.fee, gross) if is_limit else _sell_fee(gross)
        if is_limit:
            holding.held_quantity -= quantity
        else:
            _free_quantity_or_fail(holding, quantity, order.asset_id)
        post_entry(
            session,
            account,
            "order_sale",
            gross,
            reference=order.order_id,
            description=f"Sell {decimal_str(quantity)} {order.asset_id} @ {decimal_str(price)}",
            now=now,
        )
        if fee > 0:
            post_entry(session, account, "fee", -fee, reference=order.order_id, description="Trading fee", now=now)
        cost_removed = _EXACT.multiply(holding.average_cost, quantity).quantize(CENT, rounding=ROUND_HALF_EVEN)
        holding.realized_pnl += gross - fee - cost_removed
        holding.quantity -= quantity
        if holding.quantity == 0:
            holding.average_cost = Decimal(0)
        tx_type = "SELL"
    if holding.quantity < 0 or holding.held_quantity < 0 or holding.held_quantity > holding.quantity:
        raise RuntimeError(f"holding invariant broken for order {order.order_id}")  # never commit it
    holding.version += 1
    holding.updated_at = now
    session.add(holding)
    order.status = "completed"
    order.executed_price = price
    order.total_amount = gross
    order.fee = fee
    order.completed_at = now
    order.updated_at = now
    session.add(order)
    tx = AssetTransaction(
        username=order.username,
        asset_id=order.asset_id,
        order_id=order.order_id,
        transaction_type=tx_type,
        quantity=quantity,
        price=price,
        total_amount=gross,
        fee=fee,
        status="completed",
        created_at=now,
    )
    session.add(tx)
    if outbox.enabled():
        session.flush()  # the fill's id keys its outbox record
        outbox.emit(session, "order", order.order_id, order)
        _emit_holding(session, holding)
        outbox.emit(session, "asset_transaction", str(tx.id), tx)


def _same_request(order: Order, req: OrderRequest) -> bool:
    return (
        order.order_type == req.order_type
        and order.asset_id == req.asset_id
        and order.quantity == req.quantity
        and order.limit_price == req.limit_price
    )


def _prior_order(session: Session, username: str, req: OrderRequest, key: str | None, req_hash: str) -> Order | None:
    if req.client_order_id is not None:
        prior = session.exec(
            select(Order).where(Order.username == username, Order.client_order_id == req.client_order_id)
        ).first()
        if prior is not None:
            if not _same_request(prior, req):
                raise Conflict("client_order_id was already used for a different order", "client_order_id")
            return prior
    if key is not None:
        record = idempotency.lookup(session, username, "order", key, req_hash)
        if record is not None:
            prior = session.get(Order, record["order_id"])
            if prior is not None:
                return prior
    return None


def _tradeable_price(session: Session, asset_id: str) -> Decimal | None:
    """The stored price of an active asset. Reads two columns, not the whole row (sparkline, supplies...)
    that the order does not need: this runs inside the account lock on every order."""
    row = session.exec(select(Asset.is_active, Asset.price_usd).where(Asset.id == asset_id)).first()
    if row is None:
        raise ValidationFailed(f"Unknown asset {asset_id}", "asset_id")
    is_active, price = row
    if not is_active:
        raise BusinessRuleViolation(f"Asset {asset_id} is not available for trading", "asset_id")
    return price


def _check_value(value: Decimal) -> None:
    limit = get_settings().max_order_value
    if value > limit:
        raise BusinessRuleViolation(
            f"Order value ${money_str(value)} exceeds the maximum of ${money_str(limit)}", "quantity"
        )


def place_order(username: str, data: dict[str, Any], idempotency_key: str | None = None) -> OrderView:
    """Validate and place one order. Market orders fill now; limit orders rest as `pending` with a hold.

    A retry with the same `client_order_id` or `Idempotency-Key` returns the original order unchanged.
    """
    now = utcnow()
    req = parse_order_request(data, now)
    key = idempotency.check_key(idempotency_key)
    req_hash = idempotency.request_hash(req.fingerprint())
    try:
        with write_session() as session:
            account = lock_account(session, username)
            prior = _prior_order(session, username, req, key, req_hash)
            if prior is not None:
                return _view(prior)
            price = _tradeable_price(session, req.asset_id)
            order = Order(
                order_id=_new_order_id(),
                client_order_id=req.client_order_id,
                username=username,
                asset_id=req.asset_id,
                order_type=req.order_type,
                status="pending",
                quantity=req.quantity,
                limit_price=req.limit_price,
                expires_at=req.expires_at,
                created_at=now,
                updated_at=now,
            )
            if req.is_limit:
                _place_limit(session, account, order, req)
            else:
                if price is None or price <= 0:
                    raise BusinessRuleViolation(f"No current price for {req.asset_id}; try again later", "asset_id")
                _check_value(_EXACT.multiply(req.quantity, price))
                _fill(session, account, order, price, now)
            if key is not None:
                idempotency.store(session, username, "order", key, req_hash, {"order_id": order.order_id})
            view = _view(order)
    except IntegrityError:
        # Only reachable if two requests with one client_order_id raced past the account lock.
        with read_session() as session:
            prior = _prior_order(session, username, req, None, req_hash)
        if prior is None:
            raise
        return _view(prior)
    return view


def _place_limit(session: Session, account: Account, order: Order, req: OrderRequest) -> None:
    assert req.limit_price is not None
    if req.is_buy:
        gross = buy_gross(req.quantity, req.limit_price)
        _check_value(_EXACT.multiply(req.quantity, req.limit_price))
        fee = fee_for(gross)
        _free_cash_or_fail(account, gross + fee)
        order.total_amount = gross
        order.fee = fee
        order.held_amount = gross + fee
        account.held += gross + fee
        account.version += 1
        account.updated_at = order.created_at
        session.add(account)
        outbox.emit(session, "balance", account.username, account)
    else:
        _check_value(_EXACT.multiply(req.quantity, req.limit_price))
        holding = session.get(Holding, (order.username, order.asset_id))
        _free_quantity_or_fail(holding, req.quantity, req.asset_id)
        assert holding is not None
        gross = sell_gross(req.quantity, req.limit_price)
        order.total_amount = gross
        order.fee = _sell_fee(gross)
        holding.held_quantity += req.quantity
        holding.version += 1
        holding.updated_at = order.created_at
        session.add(holding)
        _emit_holding(session, holding)
    session.add(order)
    outbox.emit(session, "order", order.order_id, order)


def _new_order_id() -> str:
    return str(uuid.uuid4())


def _release(session: Session, account: Account, order: Order, status: str, now: datetime) -> None:
    """End a pending order without a fill and give back what it held."""
    if order.order_type == "limit_buy":
        account.held -= order.held_amount
        order.held_amount = Decimal(0)
        account.version += 1
        account.updated_at = now
        session.add(account)
        outbox.emit(session, "balance", account.username, account)
    elif order.order_type == "limit_sell":
        holding = session.get(Holding, (order.username, order.asset_id))
        if holding is not None:
            holding.held_quantity -= order.quantity
            holding.version += 1
            holding.updated_at = now
            session.add(holding)
            _emit_holding(session, holding)
    order.status = status
    order.updated_at = now
    order.completed_at = now
    session.add(order)
    outbox.emit(session, "order", order.order_id, order)


def cancel_order(username: str, order_id: str) -> OrderView:
    """Cancel a pending order and release its hold. Completed, cancelled or expired: Conflict (409)."""
    now = utcnow()
    with write_session() as session:
        account = lock_account(session, username)
        order = session.get(Order, order_id)
        if order is None or order.username != username:
            raise NotFound("Order not found")
        if order.status != "pending":
            raise Conflict(f"Order is {order.status}; only pending orders can be cancelled")
        _release(session, account, order, "cancelled", now)
        return _view(order)


def get_order(username: str, order_id: str) -> OrderView:
    with read_session() as session:
        order = session.get(Order, order_id)
    if order is None or order.username != username:
        raise NotFound("Order not found")
    return _view(order)


def _page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationFailed(f"limit must be between 1 and {MAX_PAGE}", "limit")
    if offset < 0:
        raise ValidationFailed("offset must be 0 or more", "offset")


def list_orders(
    username: str,
    asset_id: str | None = None,
    order_type: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[OrderView], bool]:
    """The user's orders newest first, and whether more follow."""
    _page(limit, offset)
    query = select(Order).where(Order.username == username)
    if asset_id:
        query = query.where(Order.asset_id == validation.asset_id(asset_id))
    if order_type:
        if order_type not in ORDER_TYPES:
            raise ValidationFailed("order_type must be one of " + ", ".join(ORDER_TYPES), "order_type")
        query = query.where(Order.order_type == order_type)
    if status:
        if status not in STATUSES:
            raise ValidationFailed("status must be one of " + ", ".join(STATUSES), "status")
        query = query.where(Order.status == status)
    query = query.order_by(Order.created_at.desc(), Order.order_id.desc())  # type: ignore[attr-defined]
    with read_session() as session:
        rows = session.exec(query.offset(offset).limit(limit + 1)).all()
    return [_view(o) for o in rows[:limit]], len(rows) > limit


def list_open_orders(username: str) -> list[OrderView]:
    """Pending orders, oldest first (the order ticket's open-orders list)."""
    with read_session() as session:
        rows = session.exec(
            select(Order)
            .where(Order.username == username, Order.status == "pending")
            .order_by(Order.created_at, Order.order_id)  # type: ignore[arg-type]
        ).all()
    return [_view(o) for o in rows]


def list_asset_transactions(
    username: str, asset_id: str, limit: int = 50, offset: int = 0
) -> tuple[list[FillView], bool]:
    """The user's fills of one asset, newest first. Unknown asset: NotFound."""
    _page(limit, offset)
    asset_id = validation.asset_id(asset_id)
    with read_session() as session:
        if session.get(Asset, asset_id) is None:
            raise NotFound(f"Asset {asset_id} not found")
        rows = session.exec(
            select(AssetTransaction)
            .where(AssetTransaction.username == username, AssetTransaction.asset_id == asset_id)
            .order_by(AssetTransaction.id.desc())  # type: ignore[union-attr]
            .offset(offset)
            .limit(limit + 1)
        ).all()
    return [_fill_view(t) for t in rows[:limit]], len(rows) > limit


# ---------------------------------------------------------------- matcher and expiry


def _crossed(order: Order, price: Decimal | None) -> bool:
    if price is None or price <= 0 or order.limit_price is None:
        return False
    if order.order_type == "limit_buy":
        return price <= order.limit_price
    return price >= order.limit_price


def _pending_limit_orders(session: Session) -> list[Order]:
    return list(
        session.exec(
            select(Order).where(Order.status == "pending").order_by(Order.created_at, Order.order_id)  # type: ignore[arg-type]
        ).all()
    )


def _expire_one(order_id: str, now: datetime) -> bool:
    with write_session() as session:
        order = session.get(Order, order_id)
        if order is None or order.status != "pending":
            return False
        account = lock_account(session, order.username)
        session.refresh(order)  # re-read under the lock
        if order.status != "pending" or order.expires_at is None or order.expires_at > now:
            return False
        _release(session, account, order, "expired", now)
    return True


def expire_orders(now: datetime | None = None) -> int:
    """End every pending order past its `expires_at` as `expired`, releasing its hold."""
    now = now or utcnow()
    with read_session() as session:
        due = session.exec(
            select(Order.order_id)
            .where(Order.status == "pending", Order.expires_at.is_not(None), Order.expires_at <= now)  # type: ignore[union-attr]
            .order_by(Order.created_at, Order.order_id)  # type: ignore[arg-type]
        ).all()
    count = 0
    for order_id in due:
        try:
            count += _expire_one(order_id, now)
        except Exception:  # one bad row must not stop the others; the log has it
            _log.exception("expiring order failed", extra={"order_id": order_id})
    return count


def _match_one(order_id: str, now: datetime) -> bool:
    with write_session() as session:
        order = session.get(Order, order_id)
        if order is None or order.status != "pending":
            return False
        account = lock_account(session, order.username)
        session.refresh(order)
        if order.status != "pending":
            return False
        if order.expires_at is not None and order.expires_at <= now:
            _release(session, account, order, "expired", now)
            return False
        asset = session.get(Asset, order.asset_id)
        if asset is None or not asset.is_active or not _crossed(order, asset.price_usd):
            return False
        assert order.limit_price is not None
        _fill(session, account, order, order.limit_price, now)
    return True


def match_limit_orders(now: datetime | None = None) -> int:
    """Fill every pending limit order whose limit the stored price crossed, at its limit price, oldest
    first; expire those past `expires_at`. Call after each price refresh. Returns the number filled."""
    now = now or utcnow()
    expire_orders(now)
    with read_session() as session:
        pending = _pending_limit_orders(session)
        prices = {a.id: a.price_usd for a in session.exec(select(Asset).where(Asset.is_active)).all()}
    filled = 0
    for order in pending:
        if not _crossed(order, prices.get(order.asset_id)):
            continue
        try:
            filled += _match_one(order.order_id, now)
        except Exception:  # keep matching the others; the failed order stays pending
            _log.exception("filling limit order failed", extra={"order_id": order.order_id})
    return filled
