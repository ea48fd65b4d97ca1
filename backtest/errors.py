"""The exceptions for a backtest that cannot run as asked; their message is shown to the user, with the options
it names (`vaultbot.options`) in the front end's words."""

from vaultbot.options import NamesOptions


class BacktestError(NamesOptions, ValueError):
    """Bad input to a backtest (window, pools, config, data): a one-line message naming what is wrong."""


class UsageError(BacktestError):
    """A bad value the user chose (dates, strategy name, amounts), as opposed to bad data or a broken chain."""


class ChainModeError(BacktestError):
    """Chain or fork mode cannot run: anvil is missing or failed, the fork RPC does not answer, a step reverted."""
