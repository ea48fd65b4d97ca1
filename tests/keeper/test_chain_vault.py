"""chain.vault_reader.VaultReader on the devnet after deposits and a rebalance: every number equals the
contract's own answer, guardrails and state are what strategy.guardrails models (read in one JSON-RPC batch
pinned to one block, one call at a time from a node without batches), events carry their hashes."""

from pathlib import Path

import pytest
from web3 import Web3

from chain.vault_reader import VaultReader
from devnet.deploy import MARKET_PRESETS, DevnetParams, apy_to_rate_wad
from strategy.guardrails import (
    MarketLimits,
    Reason,
    VaultState,
    check_rebalance,
    simulate_rebalance,
)
from tests.keeper.chain_world import DEPOSIT, Devnet, first_markets, fund_vault, net
from tests.keeper.rpc_recorder import RecordingProxy, recording_proxy

pytestmark = pytest.mark.anvil

PARAMS = DevnetParams()
ALLOCATION = [5_000 * 10**6, 2_500 * 10**6]
DECISION = bytes.fromhex("ab" * 32)


@pytest.fixture
def rebalanced(net: Devnet) -> dict:
    fund_vault(net)
    return net.transact(net.vault.functions.rebalance(first_markets(net, ALLOCATION), DECISION), net.deployment.keeper)


@pytest.fixture
def reader(net: Devnet) -> VaultReader:
    return VaultReader(net.w3, net.deployment.vault, net.deployment)


def test_snapshot_matches_the_contract(net, rebalanced, reader):
    vault, snap = net.vault.functions, reader.snapshot()
    markets = net.deployment.markets
    assert snap.block == net.w3.eth.block_number and snap.address == net.deployment.vault
    assert (snap.name, snap.symbol, snap.decimals, snap.asset_decimals) == ("vaultbot USDC", "vbUSD", 18, 6)
    assert snap.asset == net.deployment.asset
    assert snap.total_assets == vault.totalAssets().call() == 3 * DEPOSIT
    assert snap.total_supply == vault.totalSupply().call()
    assert snap.idle == net.token.functions.balanceOf(net.deployment.vault).call() == 3 * DEPOSIT - sum(ALLOCATION)
    assert snap.price_per_share == vault.convertToAssets(10**18).call() == reader.price_per_share()
    assert (snap.admin, snap.keeper, snap.guardian) == (net.deployment.admin, net.deployment.keeper,
                                                         net.deployment.guardian)
    assert snap.fee_recipient == vault.fee_recipient().call() and snap.paused is False
    assert (snap.deposit_limit, snap.fee_bps, snap.timelock) == (vault.deposit_limit().call(),
                                                                 vault.performance_fee_bps().call(), PARAMS.timelock)
    assert snap.last_rebalance == net.w3.eth.get_block(rebalanced["blockNumber"])["timestamp"]
    assert snap.high_water_mark == vault.high_water_mark().call()
    assert [m.address for m in snap.markets] == [m.address for m in markets]
    for market, info, preset in zip(snap.markets, markets, MARKET_PRESETS, strict=False):
        assert market.name == info.name and market.rate == apy_to_rate_wad(preset.apy)
        assert market.position == vault.position(info.address).call()
        assert (market.cap_bps, market.cap_abs) == (PARAMS.market_cap_bps, PARAMS.market_cap_abs)
    assert [m.position for m in snap.markets[:2]] == ALLOCATION


def test_guardrails_and_state_as_strategy_models_them(net, rebalanced, reader):
    rails, state = reader.guardrails(), reader.state()
    assert (rails.min_rebalance_interval, rails.max_turnover_bps, rails.max_loss_bps, rails.min_idle_bps) == (
        PARAMS.min_rebalance_interval, PARAMS.max_turnover_bps, PARAMS.max_loss_bps, PARAMS.min_idle_bps)
    assert dict(rails.markets) == {m.address: MarketLimits(cap_bps=PARAMS.market_cap_bps, cap_abs=PARAMS.market_cap_abs)
                                   for m in net.deployment.markets}
    assert state.total == net.vault.functions.totalAssets().call()
    markets = [m.address for m in net.deployment.markets]
    assert state.positions == {m: net.vault.functions.position(m).call() for m in markets}
    assert state.idle == 3 * DEPOSIT - sum(ALLOCATION) and state.paused is False
    assert state.last_rebalance == net.vault.functions.last_rebalance().call()
    # the Python mirror, fed by the reader, foresees the contract's cooldown
    now = net.w3.eth.get_block("latest")["timestamp"] + 1
    after = simulate_rebalance(state, {net.deployment.markets[0].address: 0})
    assert check_rebalance(state, after, now, rails)[0].reason == Reason.COOLDOWN


def contract_state(net: Devnet, block: int) -> VaultState:
    """The vault's state at `block` as its own views answer, one web3 call each."""
    vault = net.vault.functions
    return VaultState(idle=net.token.functions.balanceOf(net.deployment.vault).call(block_identifier=block),
                      positions={m: vault.position(m).call(block_identifier=block)
                                 for m in vault.markets().call(block_identifier=block)},
                      last_rebalance=vault.last_rebalance().call(block_identifier=block),
                      paused=vault.paused().call(block_identifier=block))


def through(proxy: RecordingProxy, net: Devnet) -> VaultReader:
    return VaultReader(Web3(Web3.HTTPProvider(proxy.url)), net.deployment.vault, net.deployment)


def test_guardrails_and_state_are_one_batch_pinned_to_one_block(net, rebalanced, reader):
    block = net.w3.eth.block_number
    with recording_proxy(net.w3.provider.endpoint_uri) as proxy:
        batched = through(proxy, net)
        batched.state(block)  # the immutable facts (the asset) are read once, on first use
        proxy.bodies.clear()
        rails, state = batched.guardrails_and_state(block)
        [batch] = proxy.bodies
        assert isinstance(batch, list) and len(batch) > 10
        assert {call["method"] for call in batch} == {"eth_call"}
        assert {call["params"][1] for call in batch} == {hex(block)}
        assert state == contract_state(net, block) and rails == reader.guardrails(block)
        assert rails.markets and set(rails.markets) == set(state.positions)

        net.transact(net.vault.functions.pause(), net.deployment.guardian)  # the chain moves on
        assert batched.guardrails_and_state(block) == (rails, state)  # still what it was at `block`
        assert batched.state().paused and batched.state() == contract_state(net, net.w3.eth.block_number)


def test_a_read_at_a_block_with_other_markets_listed_reads_those(net, rebalanced, reader):
    """The reader guesses the markets of its last read; where the vault listed others, it reads those."""
    blocks = range(reader.deployed_block(), net.w3.eth.block_number + 1)
    listed = {len(net.vault.functions.markets().call(block_identifier=b)): b for b in reversed(blocks)}
    fewer = listed[len(net.deployment.markets) - 1]  # the first block before the last market was listed
    with recording_proxy(net.w3.provider.endpoint_uri) as proxy:
        batched = through(proxy, net)
        assert batched.state() == contract_state(net, net.w3.eth.block_number)
        proxy.bodies.clear()
        rails, state = batched.guardrails_and_state(fewer)
        assert len(proxy.bodies) == 2  # the guess, then the markets listed at `fewer`
    assert state == contract_state(net, fewer) and len(state.positions) == len(net.deployment.markets) - 1
    assert set(rails.markets) <= set(state.positions) and rails == reader.guardrails(fewer)


def test_a_node_without_batches_is_read_one_call_at_a_time(net, rebalanced, reader):
    block = net.w3.eth.block_number
    with recording_proxy(net.w3.provider.endpoint_uri, refuse_batches=True) as proxy:
        rails, state = through(proxy, net).guardrails_and_state(block)
        assert any(isinstance(body, list) for body in proxy.bodies)  # asked once as a batch, refused
        assert sum(isinstance(body, dict) and body["method"] == "eth_call" for body in proxy.bodies) > 10
    assert state == contract_state(net, block) and rails == reader.guardrails(block)


def test_account_views_previews_and_maxima(net, rebalanced, reader):
    vault = net.vault.functions
    depositor = net.deployment.depositors[0]
    shares = reader.balance(depositor)
    assert shares == vault.balanceOf(depositor).call() > 0
    assert reader.preview_redeem(shares) == vault.previewRedeem(shares).call()
    assert reader.preview_deposit(10**6) == vault.previewDeposit(10**6).call()
    assert reader.preview_withdraw(10**6) == vault.previewWithdraw(10**6).call()
    assert reader.preview_mint(10**18) == vault.previewMint(10**18).call()
    assert reader.max_deposit(depositor) == vault.maxDeposit(depositor).call()
    assert reader.max_mint(depositor) == vault.maxMint(depositor).call()
    assert reader.max_withdraw(depositor) == vault.maxWithdraw(depositor).call()
    assert reader.max_redeem(depositor.lower()) == vault.maxRedeem(depositor).call()
    assert reader.total_assets() == 3 * DEPOSIT and reader.deposit_limit() == vault.deposit_limit().call()
    net.transact(net.vault.functions.pause(), net.deployment.guardian)
    assert reader.paused() and reader.max_deposit(depositor) == 0 and reader.snapshot().paused


def test_rebalance_events_and_history(net, rebalanced, reader):
    [event] = reader.rebalance_events()
    assert event.decision_hash == "0x" + DECISION.hex() and event.tx_hash == rebalanced["transactionHash"].to_0x_hex()
    assert event.block == rebalanced["blockNumber"] and event.keeper == net.deployment.keeper
    assert event.time == net.w3.eth.get_block(event.block)["timestamp"]
    assert (event.total_before, event.total_after, event.moved) == (3 * DEPOSIT, 3 * DEPOSIT, sum(ALLOCATION))
    assert event.idle_after == 3 * DEPOSIT - sum(ALLOCATION)
    assert reader.rebalance_events(from_block=event.block + 1) == []
    deployed = reader.deployed_block()
    assert net.w3.eth.get_code(net.deployment.vault, deployed) and not net.w3.eth.get_code(net.deployment.vault,
                                                                                         deployed - 1)
    # the share price read at an older block is the one of that block
    before = rebalanced["blockNumber"] - 1
    assert reader.price_per_share(block=before) == net.vault.functions.convertToAssets(10**18).call(
        block_identifier=before)
    assert reader.snapshot(block=before).last_rebalance == 0


def test_abis_from_a_directory_or_compiled(net, reader):
    from_dir = VaultReader(net.w3, net.deployment.vault.lower(), Path(net.deployment.abi_dir))
    compiled = VaultReader(net.w3, net.deployment.vault, None)
    assert from_dir.snapshot() == compiled.snapshot() == reader.snapshot()
    assert from_dir.address == Web3.to_checksum_address(net.deployment.vault)
    with pytest.raises(FileNotFoundError, match="cannot read the Vault ABI"):
        VaultReader(net.w3, net.deployment.vault, Path("/nonexistent"))


def test_a_market_without_a_rate_shows_none(net, reader):
    """A market that is not a MockMarket (here: the token itself answers name() but has no rate)."""
    from chain.vault_reader import _optional

    token_as_market = net.w3.eth.contract(address=net.deployment.asset, abi=reader.market_abi)
    assert _optional(token_as_market.functions.rate_per_second(), net.w3.eth.block_number) is None


def test_no_contract_at_the_address(net):
    empty = VaultReader(net.w3, "0x" + "12" * 20, net.deployment)
    with pytest.raises(ValueError, match=f"no contract at {empty.address} on chain 31337"):
        empty.deployed_block()


def test_the_state_names_what_a_market_short_of_cash_can_pay_back(net, rebalanced, reader):
    # The first market lends out all but 1,000 USDC: its maxWithdraw for the vault, below the vault's 5,000 there,
    # bounds what a rebalance can take out; the second pays back all of its position.
    first, second = (m.address for m in net.deployment.markets[:2])
    market = net.deployment.contract(net.w3, "MockMarket", first)
    net.transact(market.functions.set_liquidity(1_000 * 10**6), net.deployment.admin)
    state = reader.state()
    assert state.withdrawable == {first: 1_000 * 10**6}
    # the second's position has accrued since the rebalance (the market's rate runs with block time)
    assert state.withdrawable_from(first) == 1_000 * 10**6
    assert state.withdrawable_from(second) == state.position(second) >= ALLOCATION[1]
    assert reader.guardrails_and_state()[1] == state
    # a market that refuses even to say (its code reverts on every call) pays nothing, as the vault counts it
    net.rpc("anvil_setCode", second, "0x60006000fd")
    assert reader.state().withdrawable_from(second) == 0
