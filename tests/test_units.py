"""The facts Python and Vyper share, read back from a deployed Vault: its parameter ids and limits."""

import pytest

from chain.params import Param
from strategy.guardrails import MAX_MARKETS, MAX_RATE_BPS
from strategy.units import SECONDS_PER_YEAR, annualised_growth
from tests.contracts.world import Accounts, deploy_token, deploy_vault


def test_every_param_id_and_limit_is_the_deployed_vaults() -> None:
    vault = deploy_vault(deploy_token(), Accounts.generate())
    # every PARAM_* getter the contract exposes, so a new id in Vault.vy fails here until chain.params has it
    on_chain = {name.removeprefix("PARAM_"): getattr(vault, name)() for name in dir(vault) if name.startswith("PARAM_")}
    assert on_chain == {p.name: p.value for p in Param}
    assert vault.MAX_MARKETS() == MAX_MARKETS
    assert vault.MAX_RATE_BPS() == MAX_RATE_BPS


def test_annualised_growth_compounds_and_refuses_what_cannot_be_told() -> None:
    assert annualised_growth(100, 105, SECONDS_PER_YEAR) == pytest.approx(0.05, abs=1e-12)
    assert annualised_growth(100, 105, SECONDS_PER_YEAR // 2) == pytest.approx(1.05**2 - 1, abs=1e-12)
    assert annualised_growth(100, 105, 0) is None
    assert annualised_growth(0, 105, 10) is None


def test_every_revert_reason_the_mirror_names_is_the_contracts_own_words() -> None:
    # `strategy.guardrails.Reason` spells what Vault.rebalance (or the MockMarket under it) reverts with; a reason
    # reworded in Vyper fails here until the mirror says it the same way.
    from strategy.guardrails import Reason
    from vaultbot.resources import contracts_dir

    sources = "".join((contracts_dir() / name).read_text() for name in ("Vault.vy", "MockMarket.vy"))
    assert [reason for reason in Reason if f'"{reason.value}"' not in sources] == []
