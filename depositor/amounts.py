"""Amounts as people write them ("1,000.5") <-> integer base units, and the slippage bounds of a preview."""

from decimal import ROUND_DOWN, Decimal, InvalidOperation

from depositor.errors import BadInput
from strategy.units import BPS

DISPLAY_PLACES = 6  # more decimals than this only add noise on screen; exact values stay in base units


def parse_amount(text: str, decimals: int, *, what: str) -> int:
    """'1,000.5' with 6 decimals -> 1000500000. `what` names the amount in error messages."""
    cleaned = text.strip().replace(",", "").replace("_", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise BadInput(f"{what}: {text!r} is not a number") from None
    if not value.is_finite():
        raise BadInput(f"{what}: {text!r} is not a finite number")
    if value <= 0:
        raise BadInput(f"{what}: must be more than 0, got {text!r}")
    units = value.scaleb(decimals)
    if units != units.to_integral_value():
        raise BadInput(f"{what}: {text!r} has more than {decimals} decimal places")
    return int(units)


def format_units(value: int, decimals: int, symbol: str = "", *, places: int = DISPLAY_PLACES) -> str:
    """1000500000 with 6 decimals -> '1,000.50 USDC': grouped, at least 2 and at most `places` decimals,
    rounded down so a shown amount is never more than the real one."""
    shown = Decimal(value).scaleb(-decimals).quantize(Decimal(1).scaleb(-min(places, decimals)), rounding=ROUND_DOWN)
    text = f"{shown:,f}"
    if "." in text:
        whole, fraction = text.split(".")
        fraction = fraction.rstrip("0").ljust(min(2, decimals), "0")
        text = f"{whole}.{fraction}" if fraction else whole
    return f"{text} {symbol}".rstrip()


def plain_units(value: int, decimals: int) -> str:
    """1000500000 with 6 decimals -> '1000.5': exact, no grouping; what an input field accepts back."""
    text = f"{Decimal(value).scaleb(-decimals):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def parse_bps(text: str, *, what: str) -> int:
    """A tolerance like '0.5%' or '50bps' -> basis points (0..10000)."""
    cleaned = text.strip().lower().replace(" ", "")
    scale, number = (Decimal(100), cleaned[:-1]) if cleaned.endswith("%") else (Decimal(1), cleaned.removesuffix("bps"))
    try:
        bps = Decimal(number) * scale
    except InvalidOperation:
        raise BadInput(f"{what}: {text!r} is not a tolerance like '0.5%' or '50bps'") from None
    if not bps.is_finite() or not 0 <= bps <= BPS or bps != bps.to_integral_value():
        raise BadInput(f"{what}: {text!r} must be a whole number of basis points between 0 and {BPS} (100%)")
    return int(bps)


def at_least(preview: int, tolerance_bps: int) -> int:
    """The smallest outcome accepted when `preview` may get `tolerance_bps` worse (rounded up)."""
    return preview - preview * tolerance_bps // BPS


def at_most(preview: int, tolerance_bps: int) -> int:
    """The largest cost accepted when `preview` may get `tolerance_bps` worse (rounded down)."""
    return preview + preview * tolerance_bps // BPS
