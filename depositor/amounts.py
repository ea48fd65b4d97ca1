"""Amounts as people write them ("1,000.5") <-> integer base units, and the slippage bounds of a preview.
(Amounts shown to people: `strategy.units.format_units`.)"""

import re
from decimal import Decimal, InvalidOperation

from depositor.errors import BadInput, quoted
from strategy.units import BPS, MAX_AMOUNT_CHARS, UINT256_DIGITS, UINT256_MAX, exact_decimals

# Commas separate groups of three digits before the point, nothing else: "1,00" (one, in much of Europe) must
# not become a hundred.
_GROUPED = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?")


def parse_amount(text: str, decimals: int, *, what: str) -> int:
    """'1,000.5' with 6 decimals -> 1000500000: more than 0, at most uint256 base units. `what` names the
    amount in error messages."""
    if len(text) > MAX_AMOUNT_CHARS:
        raise BadInput(f"{what}: too long ({len(text)} characters; at most {MAX_AMOUNT_CHARS})")
    if "," in text and not _GROUPED.fullmatch(text.strip().replace("_", "")):
        raise BadInput(f"{what}: {text!r} has a comma that does not separate thousands (1,000.5: the decimal "
                       "point is '.')")
    cleaned = text.strip().replace(",", "").replace("_", "")
    try:
        value = _ascii_decimal(cleaned)
    except InvalidOperation:
        raise BadInput(f"{what}: {text!r} is not a number") from None
    if not value.is_finite():
        raise BadInput(f"{what}: {text!r} is not a finite number")
    if value <= 0:
        raise BadInput(f"{what}: must be more than 0, got {text!r}")
    # the exponent alone rules these out, before any arithmetic on an absurd one (1e400, 1e-400)
    if value.adjusted() + decimals >= UINT256_DIGITS:
        raise BadInput(f"{what}: {text!r} is more than any token amount (2**256 - 1 base units)")
    if value.adjusted() < -decimals:
        raise BadInput(f"{what}: {text!r} has more than {decimals} decimal places")
    with exact_decimals():
        units = value.scaleb(decimals)
    if units != units.to_integral_value():
        raise BadInput(f"{what}: {text!r} has more than {decimals} decimal places")
    if units > UINT256_MAX:
        raise BadInput(f"{what}: {text!r} is more than any token amount (2**256 - 1 base units)")
    return int(units)


def _ascii_decimal(text: str) -> Decimal:
    """`Decimal(text)` of ASCII text only: Decimal reads the digits of any script ('٣' as 3, '１０' as 10), which a
    depositor may paste without seeing what amount they are."""
    if not text.isascii():
        raise InvalidOperation(text)
    return Decimal(text)


def parse_base_units(value: object, *, what: str) -> int:
    """A whole number of base units sent as a string of digits (what the page sends back): 0 to uint256."""
    if not (isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= UINT256_DIGITS
            and int(value) <= UINT256_MAX):
        raise BadInput(f"{what} must be a whole number of base units as a string (at most 2**256 - 1), "
                       f"got {quoted(value)}")
    return int(value)


def plain_units(value: int, decimals: int) -> str:
    """1000500000 with 6 decimals -> '1000.5': exact, no grouping; what an input field accepts back."""
    with exact_decimals():
        text = f"{Decimal(value).scaleb(-decimals):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def parse_bps(text: str, *, what: str) -> int:
    """A tolerance like '0.5%' or '50bps' -> basis points (0..10000)."""
    cleaned = text.strip().lower().replace(" ", "")
    scale, number = (Decimal(100), cleaned[:-1]) if cleaned.endswith("%") else (Decimal(1), cleaned.removesuffix("bps"))
    try:
        bps = _ascii_decimal(number) * scale
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
