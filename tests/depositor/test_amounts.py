"""Amount parsing and formatting: exact base units, clear errors, display never rounds up."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from depositor.amounts import (
    at_least,
    at_most,
    parse_amount,
    parse_base_units,
    parse_bps,
    plain_units,
)
from depositor.errors import BadInput
from strategy.units import UINT256_MAX, format_units


@pytest.mark.parametrize(("text", "decimals", "units"), [
    ("1", 6, 1_000_000), ("1,000.5", 6, 1_000_500_000), (" 0.000001 ", 6, 1), ("2_500", 0, 2500),
    ("1e3", 6, 1_000_000_000), ("0.123456789012345678", 18, 123456789012345678),
])
def test_parse_amount_gives_exact_base_units(text: str, decimals: int, units: int) -> None:
    assert parse_amount(text, decimals, what="AMOUNT") == units


@pytest.mark.parametrize(("text", "message"), [
    ("abc", "'abc' is not a number"), ("0", "must be more than 0"), ("-5", "must be more than 0"),
    ("nan", "not a finite number"), ("inf", "not a finite number"), ("1.0000001", "more than 6 decimal places"),
    # absurd sizes: refused from the exponent or the length, before any arithmetic (they used to crash or give 0)
    ("1e400", "more than any token amount"), ("1e999999999", "more than any token amount"),
    (plain_units(UINT256_MAX + 1, 6), "more than any token amount"),
    ("1e-400", "more than 6 decimal places"), ("1e-999999999", "more than 6 decimal places"),
    ("9" * 500, "too long (500 characters; at most 120)"),
    # digits of other scripts, which Decimal reads: Arabic-Indic three, full-width ten, a Devanagari one mixed in
    ("\u0663", "'\u0663' is not a number"), ("\uff11\uff10", "is not a number"), ("1\u0967", "is not a number"),
])
def test_parse_amount_names_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(BadInput, match="^AMOUNT: ") as error:
        parse_amount(text, 6, what="AMOUNT")
    assert message in str(error.value)


@pytest.mark.parametrize(("units", "decimals", "symbol", "shown"), [
    (1_000_500_000, 6, "USDC", "1,000.50 USDC"), (1, 6, "USDC", "0.000001 USDC"), (0, 6, "", "0.00"),
    (1_234_567_890_123_456_789, 18, "vbUSD", "1.234567 vbUSD"), (5, 0, "X", "5 X"),
])
def test_format_units(units: int, decimals: int, symbol: str, shown: str) -> None:
    assert format_units(units, decimals, symbol) == shown


def test_the_largest_amount_parses_and_shows_exactly() -> None:
    text = plain_units(UINT256_MAX, 6)
    assert parse_amount(text, 6, what="AMOUNT") == UINT256_MAX
    assert format_units(UINT256_MAX, 6, "USDC").endswith(",913,129.639935 USDC")  # no rounding at 78 digits


@given(st.integers(min_value=1, max_value=UINT256_MAX), st.integers(min_value=0, max_value=18))
def test_plain_units_round_trips_and_display_never_exceeds(units: int, decimals: int) -> None:
    assert parse_amount(plain_units(units, decimals), decimals, what="x") == units
    shown = Decimal(format_units(units, decimals).replace(",", ""))
    assert shown.scaleb(decimals) <= units


def test_parse_base_units() -> None:
    assert parse_base_units("0", what="guard") == 0
    assert parse_base_units(str(UINT256_MAX), what="guard") == UINT256_MAX


@pytest.mark.parametrize("value", ["", "-3", "1.5", "²", "١٢", str(UINT256_MAX + 1), "9" * 5000, 12, None])
def test_parse_base_units_refuses(value: object) -> None:
    with pytest.raises(BadInput, match="^guard must be a whole number of base units") as error:
        parse_base_units(value, what="guard")
    assert len(str(error.value)) < 200  # the value is quoted, never echoed whole


@pytest.mark.parametrize(("text", "bps"), [("0.5%", 50), ("50bps", 50), ("50", 50), ("100%", 10_000), ("0", 0)])
def test_parse_bps(text: str, bps: int) -> None:
    assert parse_bps(text, what="--slippage") == bps


@pytest.mark.parametrize("text", ["abc", "-1%", "101%", "0.01bps", "0.001%", "\u0665%", "\uff15\uff10bps"])
def test_parse_bps_refuses(text: str) -> None:
    with pytest.raises(BadInput, match="^--slippage: "):
        parse_bps(text, what="--slippage")


@given(st.integers(min_value=0, max_value=10**30), st.integers(min_value=0, max_value=10_000))
def test_slippage_bounds(preview: int, bps: int) -> None:
    low, high = at_least(preview, bps), at_most(preview, bps)
    assert low <= preview <= high
    assert low * 10_000 >= preview * (10_000 - bps)  # never looser than the tolerance
    assert high * 10_000 <= preview * (10_000 + bps)
