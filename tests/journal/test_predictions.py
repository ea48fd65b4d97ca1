"""The journaled forecasts read back as the keeper decided on them: what the depositor tools explain a decision
with (`journal.predictions`)."""

from journal.predictions import forecasts_by_market, forecasts_problem, predictions_json
from strategy.allocator import MarketForecast
from strategy.market_supply import MarketDepth

MARKETS = {"pool-a": "0x" + "aa" * 20, "pool-b": "0x" + "bb" * 20}


def test_forecasts_read_back_as_they_were_journaled_with_their_own_loss_given_event() -> None:
    forecasts = {"pool-a": MarketForecast(4.25, 0.125, loss_given_event=0.0003),
                 "pool-b": MarketForecast(7.5, 0.5),
                 "pool-unlisted": MarketForecast(9.0, 0.0)}
    journaled = predictions_json(forecasts, MARKETS)
    assert "loss_given_event" not in journaled["pool-b"]  # the spelling of every row journaled before it existed
    assert journaled["pool-unlisted"]["market"] is None
    assert forecasts_by_market(journaled) == {MARKETS["pool-a"]: forecasts["pool-a"],
                                              MARKETS["pool-b"]: forecasts["pool-b"]}


def test_a_row_journaled_before_the_loss_given_event_was_kept_reads_as_a_forecast_without_one() -> None:
    old = {"pool-a": {"market": MARKETS["pool-a"], "apy_pct": 3.0, "p_event": 0.02}}
    assert forecasts_by_market(old) == {MARKETS["pool-a"]: MarketForecast(3.0, 0.02)}


def test_a_markets_supply_the_allocator_was_told_reads_back_with_its_forecast() -> None:
    forecasts = {"pool-a": MarketForecast(4.25, 0.125), "pool-b": MarketForecast(7.5, 0.5)}
    supply = 3 * 10**24  # beyond a float's 2^53: journaled as a string, read back to the unit
    journaled = predictions_json(forecasts, MARKETS, {MARKETS["pool-a"]: MarketDepth(supply, 3.5)})
    assert journaled["pool-a"]["supply"] == str(supply) and "supply" not in journaled["pool-b"]
    assert forecasts_by_market(journaled) == {MARKETS["pool-a"]: MarketForecast(4.25, 0.125, supply=supply,
                                                                                elasticity=3.5),
                                              MARKETS["pool-b"]: forecasts["pool-b"]}


def test_the_position_a_markets_rate_is_at_reads_back_and_is_left_out_at_zero() -> None:
    forecasts = {"pool-a": MarketForecast(4.25, 0.125), "pool-b": MarketForecast(7.5, 0.5)}
    depth = {MARKETS["pool-a"]: MarketDepth(3_600_000, 2.0, held=1_000_000), MARKETS["pool-b"]: MarketDepth(9, 1.0)}
    journaled = predictions_json(forecasts, MARKETS, depth)
    assert journaled["pool-a"]["held"] == "1000000" and "held" not in journaled["pool-b"]
    assert forecasts_by_market(journaled)[MARKETS["pool-a"]] == MarketForecast(4.25, 0.125, supply=3_600_000,
                                                                               elasticity=2.0, held=1_000_000)
    journaled["pool-a"]["held"] = "-5"
    assert forecasts_problem(journaled) == "the held of 'pool-a' is '-5', not a whole amount"
