"""Pure market rules: change percentages, the stored sparkline format, the simulator's derived fields."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from cnop_app.services.market import store
from cnop_app.services.market.catalogue import change_percentage
from cnop_app.services.market.simulator import move_coin
from cnop_app.services.market.store import category, sparkline_text, sparkline_values

NOW = datetime(2025, 1, 2, tzinfo=timezone.utc)


def test_change_percentage_has_six_decimals() -> None:
    assert change_percentage(Decimal(3), Decimal(4)) == Decimal("33.333333")
    assert change_percentage(Decimal(4), Decimal(3)) == Decimal("-25.000000")
    assert change_percentage(Decimal("0.1"), Decimal("0.1")) == 0


def test_sparkline_text_round_trips_exactly_even_in_exponent_notation() -> None:
    points = [Decimal("1.2E-8"), Decimal("42"), Decimal("67890.123456789")]
    assert sparkline_values(sparkline_text(points)) == points
    assert sparkline_values("not json") == [] and sparkline_values('{"a": 1}') == [] and sparkline_values("") == []


def test_a_parsed_sparkline_is_shared_but_each_caller_gets_its_own_list() -> None:
    text = sparkline_text([Decimal("1.5"), Decimal("2")])
    first = sparkline_values(text, "RULES-A")
    first.append(Decimal(9))
    second = sparkline_values(text, "RULES-A")
    assert second == [Decimal("1.5"), Decimal("2")] and second is not first


def test_the_parsed_sparklines_keep_one_version_per_asset() -> None:
    # A refresh changes the last point: each new text replaces the asset's entry, none piles up.
    sparkline_values(sparkline_text([Decimal(1), Decimal(2)]), "RULES-B")
    size = len(store._parsed_sparklines)
    for last in range(50):
        points = [Decimal(1), Decimal(last)]
        assert sparkline_values(sparkline_text(points), "RULES-B") == points
    assert len(store._parsed_sparklines) == size


def test_a_sparkline_whose_last_point_moved_reuses_the_other_points_and_parses_like_the_whole_text() -> None:
    week = [Decimal(f"{100 + i}.25") for i in range(168)]
    sparkline_values(sparkline_text(week), "RULES-C")
    texts = [
        sparkline_text([*week[:-1], Decimal("99.5")]),  # a refresh replaces the last point
        sparkline_text([*week[1:-1], Decimal("99.5"), Decimal("1.2E-8")]),  # the week moves on by a point
        sparkline_text([*week[1:-1], Decimal("99.5"), Decimal("3")]),
        "[1, 2, 3]",  # spaces, as json.dumps writes it
        "[1, 2, 4]",
        "[1,null,4]",  # not only numbers: parsed whole, the null dropped
        "[1,null,5]",
        "[1,2,NaN]",
        "[1,2,[3]]",
        "[1,2,x]",
        "[1]",
        "[]",
        "",
        sparkline_text(week),
    ]
    for text in texts:
        before = store._parsed_sparklines["RULES-C"][1]
        got = sparkline_values(text, "RULES-C")
        assert got == sparkline_values(text), text
        if text is texts[0] or text is texts[1]:
            # The kept points are the previous parse's own objects: only the new number was parsed.
            assert got[0] is before[0 if text is texts[0] else 1]


def test_stablecoins_have_their_own_category() -> None:
    assert category("USDT") == "stablecoin" and category("BTC") == "crypto"


def test_move_coin_keeps_derived_fields_consistent() -> None:
    coin = {
        "price_usd": Decimal(100),
        "price_change_24h": Decimal(-10),  # opened the day at 110
        "price_change_percentage_7d": Decimal(25),  # 80 a week ago
        "price_change_percentage_30d": None,
        "high_24h": Decimal(112),
        "low_24h": Decimal(99),
        "circulating_supply": Decimal(1000),
        "ath": Decimal(120),
        "atl": Decimal(1),
        "sparkline_7d": [Decimal(90), Decimal(100)],
    }
    move_coin(coin, Decimal(121), NOW)
    assert coin["price_usd"] == 121 and coin["last_updated"] == NOW
    assert coin["price_change_24h"] == 11 and coin["price_change_percentage_24h"] == Decimal("10.000000")
    assert coin["price_change_percentage_7d"] == Decimal("51.250000")
    assert coin["price_change_percentage_30d"] is None
    assert (coin["high_24h"], coin["low_24h"]) == (121, 99)
    assert coin["market_cap"] == 121_000
    assert (coin["ath"], coin["ath_date"], coin["ath_change_percentage"]) == (121, NOW, 0)
    assert coin["atl_change_percentage"] == Decimal("12000.000000")
    assert coin["sparkline_7d"] == [Decimal(90), Decimal(121)]
