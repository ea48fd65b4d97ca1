"""The exceptions for a backtest that cannot run as asked; their message is shown to the user as is."""


class BacktestError(ValueError):
    """Bad input to a backtest (window, pools, config, data): a one-line message naming what is wrong."""

    exit_code = 1


class UsageError(BacktestError):
    """A bad command-line value (dates, strategy name, amounts): exit code 2, as for other usage errors."""

    exit_code = 2


class ChainModeError(BacktestError):
    """Chain or fork mode cannot run: anvil is missing or failed, the fork RPC does not answer, a step reverted."""
