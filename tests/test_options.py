"""A library error names its caller's options in its own words; the CLI shows them as flags."""

import pytest

from backtest.errors import UsageError
from backtest.run import build_setup
from cli.common import as_flags
from depositor.errors import BadInput


def test_a_library_error_names_options_and_the_cli_shows_them_as_flags() -> None:
    with pytest.raises(UsageError) as raised:
        build_setup(None, None, None, None, capital=-1, rebalance_every=1)  # type: ignore[arg-type]
    error = raised.value
    assert str(error) == "`capital` must be positive, got -1" and error.options == ("capital",)
    assert as_flags(error) == "--capital must be positive, got -1"
    both = UsageError("`fork_url` and `fork_block` go together", "fork_url", "fork_block")
    assert as_flags(both) == "--fork-url and --fork-block go together"
    # only the options the error lists are rewritten; other backquoted text stays
    assert as_flags(BadInput("`account` 7: see `cast wallet`", "account")) == "--account 7: see `cast wallet`"
    assert as_flags(ValueError("plain")) == "plain"
