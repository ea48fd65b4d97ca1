"""chain.tx on the devnet: EIP-1559 sends, reverts with their reasons, stuck transactions replaced,
and a transaction journaled before a crash resumed after it without ever being sent twice: whichever of its
versions was mined, or replaced with bumped fees when the base fee priced it out."""

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3.exceptions import TimeExhausted, TransactionNotFound

from chain.errors import ContractRevert
from chain.rebalance import propose_call, report_call
from chain.tx import (
    GWEI,
    MIN_BUMP_PERCENT,
    Abandoned,
    BuiltOn,
    NonceUsed,
    PendingTx,
    TxError,
    TxSender,
    bumped,
    calldata,
    next_base_fee,
)
from journal.db import to_hex
from tests.keeper.chain_world import (
    Devnet,
    first_markets,
    fund_vault,
    keeper_account,
    manual_mining,
    net,
)

pytestmark = pytest.mark.anvil

ALLOCATION = [4_000 * 10**6, 3_000 * 10**6]


class Crash(Exception):
    """The process 'dies' between journaling a signed transaction and broadcasting it."""


def sender_of(net: Devnet, account: LocalAccount, **options: Any) -> TxSender:
    """A sender signing for the devnet's chain."""
    return TxSender(net.w3, account, chain_id=net.deployment.chain_id, **options)


def rebalance(net: Devnet, decision: bytes = b"\x01" * 32):
    return net.vault.functions.rebalance(first_markets(net, ALLOCATION), decision)


def crash_after_journaling(journal: list[PendingTx]) -> Callable[[PendingTx], None]:
    def on_signed(pending: PendingTx) -> None:
        journal.append(pending)
        raise Crash

    return on_signed


def crashed_send(net: Devnet, sender: TxSender) -> list[PendingTx]:
    """Funds the vault and sends a rebalance that 'dies' once it is signed and journaled: the journal."""
    fund_vault(net)
    journal: list[PendingTx] = []
    with pytest.raises(Crash):
        sender.send(rebalance(net), on_signed=crash_after_journaling(journal))
    return journal


def in_background(work: Callable[[], object]) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def run() -> None:
        try:
            result["value"] = work()
        except Exception as error:
            result["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def finished(thread: threading.Thread, timeout: float = 60.0) -> None:
    # a send still running would go on mining into the next test's chain: fail here, on this test, instead
    thread.join(timeout)
    assert not thread.is_alive(), "the background send did not finish in time"


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def known_to_node(net: Devnet, tx_hash: bytes) -> bool:
    try:
        net.w3.eth.get_transaction(tx_hash)
    except TransactionNotFound:
        return False
    return True


def test_send_signs_eip1559_journals_before_broadcast_and_returns_the_receipt(net, keeper_account):
    fund_vault(net)
    sender = sender_of(net, keeper_account, max_fee_gwei=50, priority_fee_gwei=2)
    journal = []

    def on_signed(pending: PendingTx) -> None:
        assert not known_to_node(net, pending.tx_hash), "on_signed must run before the broadcast"
        journal.append(pending)

    nonce = net.w3.eth.get_transaction_count(keeper_account.address)
    receipt = sender.send(rebalance(net), on_signed=on_signed)
    [pending] = journal
    assert receipt["status"] == 1 and receipt["type"] == 2 and receipt["transactionHash"] == pending.tx_hash
    assert pending.nonce == nonce and net.w3.eth.get_transaction_count(keeper_account.address) == nonce + 1
    assert pending.max_priority_fee_per_gas == 2 * GWEI and pending.max_fee_per_gas <= 50 * GWEI
    assert receipt["effectiveGasPrice"] <= pending.max_fee_per_gas and receipt["gasUsed"] < pending.gas_limit
    mined = net.w3.eth.get_transaction(receipt["transactionHash"])
    assert (mined["maxFeePerGas"], mined["nonce"]) == (pending.max_fee_per_gas, nonce)
    assert mined["input"] == HexBytes(rebalance(net)._encode_transaction_data())  # web3's own encoding


def test_calldata_is_web3s_encoding_of_every_kind_of_call_the_project_sends(net, keeper_account):
    vault, token, account = net.vault, net.token, keeper_account.address
    calls = [rebalance(net), propose_call(vault, first_markets(net, ALLOCATION), "0x" + "ab" * 32), report_call(vault),
             vault.functions.deposit(10**6, account), vault.functions.withdraw(10**6, account, account),
             vault.functions.set_decisions_uri("https://example.org/decisions/"),
             token.functions.approve(vault.address, 1)]
    for call in calls:
        assert calldata(call) == call._encode_transaction_data(), call.fn_name
    with pytest.raises(TypeError, match="by position"):
        calldata(token.functions.approve(spender=vault.address, amount=1))


def test_a_guardrail_revert_is_decoded_and_nothing_is_sent(net, keeper_account):
    fund_vault(net)
    sender = sender_of(net, keeper_account)
    sender.send(rebalance(net))
    nonce = net.w3.eth.get_transaction_count(keeper_account.address)
    with pytest.raises(ContractRevert, match="^vault: cooldown$") as raised:
        sender.simulate(rebalance(net, b"\x02" * 32))
    assert raised.value.reason == "vault: cooldown" and raised.value.receipt is None
    journal = []
    with pytest.raises(ContractRevert, match="vault: cooldown"):
        sender.send(rebalance(net, b"\x02" * 32), on_signed=journal.append)
    assert journal == [] and net.w3.eth.get_transaction_count(keeper_account.address) == nonce


def test_a_call_from_someone_else_than_the_keeper(net):
    stranger = Account.create()
    with pytest.raises(ContractRevert, match="vault: not keeper"):
        sender_of(net, stranger).simulate(rebalance(net))


def test_a_revert_when_mined_carries_the_receipt_and_the_replayed_reason(net, keeper_account):
    """The guardian's pause (higher tip) lands in the same block just before the rebalance, after its estimate."""
    fund_vault(net)
    sender = sender_of(net, keeper_account, priority_fee_gwei=1, receipt_timeout_s=20)
    journal = []
    with manual_mining(net.w3):
        thread, result = in_background(lambda: sender.send(rebalance(net), on_signed=journal.append))
        wait_until(lambda: bool(journal) and known_to_node(net, journal[0].tx_hash))
        net.vault.functions.pause().transact({"from": net.deployment.guardian, "maxPriorityFeePerGas": 5 * GWEI,
                                              "maxFeePerGas": 50 * GWEI})
        net.rpc("evm_mine")
        finished(thread)
    revert = result["error"]
    assert isinstance(revert, ContractRevert) and revert.reason == "vault: paused"
    assert revert.receipt["status"] == 0 and revert.tx_hash == to_hex(journal[0].tx_hash)
    assert f"transaction {revert.tx_hash} reverted: vault: paused" == str(revert)


def test_a_stuck_transaction_is_replaced_with_bumped_fees_and_the_same_nonce(net, keeper_account):
    fund_vault(net)
    sender = sender_of(net, keeper_account, max_fee_gwei=100, priority_fee_gwei=1.5, receipt_timeout_s=0.4,
                      bump_percent=10)
    journal = []
    nonce = net.w3.eth.get_transaction_count(keeper_account.address)
    with manual_mining(net.w3):
        thread, result = in_background(lambda: sender.send(rebalance(net), on_signed=journal.append))
        wait_until(lambda: len(journal) == 2 and known_to_node(net, journal[1].tx_hash))
        net.rpc("evm_mine")
        finished(thread)
    first, second = journal
    receipt = result["value"]
    assert receipt["transactionHash"] == second.tx_hash and receipt["status"] == 1
    assert first.nonce == second.nonce == nonce
    assert net.w3.eth.get_transaction_count(keeper_account.address) == nonce + 1
    # 10 % asked, 12.5 % is the floor nodes demand
    assert second.max_fee_per_gas >= first.max_fee_per_gas * (100 + MIN_BUMP_PERCENT) / 100
    assert second.max_priority_fee_per_gas >= first.max_priority_fee_per_gas * (100 + MIN_BUMP_PERCENT) / 100
    assert second.max_fee_per_gas <= 100 * GWEI and first.gas_limit == second.gas_limit


def test_no_replacement_above_the_fee_cap(net, keeper_account):
    fund_vault(net)
    sender = sender_of(net, keeper_account, max_fee_gwei=1.5, priority_fee_gwei=1.5, receipt_timeout_s=0.3)
    journal = []
    with manual_mining(net.w3):
        with pytest.raises(TimeExhausted, match="fee cap 1.5 gwei leaves no room for a replacement"):
            sender.send(rebalance(net), on_signed=journal.append)
    [only] = journal
    assert only.max_fee_per_gas == 1.5 * GWEI


def test_a_base_fee_above_the_cap_sends_nothing(net, keeper_account):
    net.rpc("anvil_setNextBlockBaseFeePerGas", hex(200 * GWEI))
    net.rpc("evm_mine")
    journal = []
    with pytest.raises(TxError, match="base fee is 200 gwei, at or above the fee cap 100 gwei"):
        sender_of(net, keeper_account, max_fee_gwei=100).send(rebalance(net), on_signed=journal.append)
    assert journal == []


def test_bumped_rounds_up_and_never_below_the_floor():
    assert bumped(100, 10) == 113 and bumped(100, 20) == 120 and bumped(1, 15) == 2


def test_resume_after_a_crash_broadcasts_the_journaled_bytes_once(net, keeper_account):
    sender = sender_of(net, keeper_account)
    nonce = net.w3.eth.get_transaction_count(keeper_account.address)
    journal = crashed_send(net, sender)
    [signed] = journal
    assert net.w3.eth.get_transaction_count(keeper_account.address) == nonce and not known_to_node(net, signed.tx_hash)

    # a restarted process: a new sender, the pending transaction as the journal stores it (hex strings)
    stored = PendingTx(nonce=signed.nonce, tx_hash=to_hex(signed.tx_hash), raw_tx=to_hex(signed.raw_tx),
                       max_fee_per_gas=signed.max_fee_per_gas,
                       max_priority_fee_per_gas=signed.max_priority_fee_per_gas, gas_limit=signed.gas_limit,
                       built_on=BuiltOn(to_hex(signed.built_on.genesis_hash), signed.built_on.block_number,
                                        to_hex(signed.built_on.block_hash)))
    restarted = sender_of(net, keeper_account)
    receipt = restarted.resume([stored])
    assert receipt["transactionHash"] == signed.tx_hash and receipt["status"] == 1
    assert restarted.resume([stored]) == receipt  # resuming again only reads the receipt
    assert net.w3.eth.get_transaction_count(keeper_account.address) == nonce + 1
    assert len(net.vault.events.Rebalanced().get_logs(from_block=receipt["blockNumber"])) == 1


def test_resume_of_a_transaction_whose_nonce_another_took(net, keeper_account):
    sender = sender_of(net, keeper_account)
    journal = crashed_send(net, sender)
    other = sender.send(net.token.functions.approve(net.deployment.vault, 1))  # signs the same nonce anew
    assert net.w3.eth.get_transaction(other["transactionHash"])["nonce"] == journal[0].nonce
    with pytest.raises(NonceUsed, match=f"nonce {journal[0].nonce} of {keeper_account.address} was used by another"):
        sender.resume(journal)


def test_resume_waits_and_reports_a_transaction_still_pending(net, keeper_account):
    sender = sender_of(net, keeper_account, receipt_timeout_s=0.3, max_replacements=0)
    journal = crashed_send(net, sender)
    with manual_mining(net.w3):
        with pytest.raises(TimeExhausted, match=r"not mined within 0.3s; no replacement left \(max_replacements=0\)"):
            sender.resume(journal)
        assert known_to_node(net, journal[0].tx_hash)  # rebroadcast, in the pool
        with pytest.raises(TimeExhausted):  # the pool already holds it: the node's "already imported" is no error
            sender.resume(journal)
        net.rpc("evm_mine")
    receipt = sender.resume(journal)
    assert receipt["status"] == 1 and receipt["transactionHash"] == journal[0].tx_hash


def test_resume_returns_the_receipt_of_an_older_version_that_was_mined(net, keeper_account):
    """The process died after journaling a replacement, before broadcasting it; the node mined the original."""
    fund_vault(net)
    sender = sender_of(net, keeper_account, receipt_timeout_s=0.3)
    nonce = net.w3.eth.get_transaction_count(keeper_account.address)
    journal = []

    def dies_at_the_replacement(pending: PendingTx) -> None:
        journal.append(pending)
        if len(journal) == 2:
            raise Crash

    with manual_mining(net.w3):
        with pytest.raises(Crash):
            sender.send(rebalance(net), on_signed=dies_at_the_replacement)
        original, replacement = journal
        assert known_to_node(net, original.tx_hash) and not known_to_node(net, replacement.tx_hash)
        net.rpc("evm_mine")
    receipt = sender_of(net, keeper_account).resume(journal)
    assert receipt["transactionHash"] == original.tx_hash and receipt["status"] == 1
    assert net.w3.eth.get_transaction_count(keeper_account.address) == nonce + 1
    assert not known_to_node(net, replacement.tx_hash)  # nothing broadcast for a nonce already used


def priced_out(net: Devnet, pending: PendingTx, *, mined: bool) -> int:
    """A base fee above `pending`'s max fee: of the latest block (`mined`), or of the next block only (the latest
    looks fine, the node refuses the rebroadcast). Returns it."""
    base_fee = 2 * pending.max_fee_per_gas if mined else pending.max_fee_per_gas + GWEI // 10
    net.rpc("anvil_setNextBlockBaseFeePerGas", hex(base_fee))
    if mined:
        net.rpc("evm_mine")
    return base_fee


@pytest.mark.parametrize(("mined", "reason"), [(True, "gwei, below the base fee"),
                                               (False, "was refused by the node")],
                         ids=["base-fee-of-the-latest-block", "rebroadcast-refused"])
def test_resume_replaces_a_transaction_the_base_fee_priced_out(net, keeper_account, caplog, mined, reason):
    sender = sender_of(net, keeper_account, max_fee_gwei=100)
    nonce = net.w3.eth.get_transaction_count(keeper_account.address)
    journal = crashed_send(net, sender)
    [signed] = journal
    base_fee = priced_out(net, signed, mined=mined)
    resumed = []

    def on_signed(pending: PendingTx) -> None:
        assert not known_to_node(net, pending.tx_hash), "a replacement is journaled before its broadcast"
        resumed.append(pending)

    receipt = sender_of(net, keeper_account, max_fee_gwei=100).resume(journal, on_signed=on_signed)
    [replacement] = resumed
    assert receipt["transactionHash"] == replacement.tx_hash and receipt["status"] == 1
    assert replacement.nonce == signed.nonce == nonce and replacement.gas_limit == signed.gas_limit
    assert base_fee < replacement.max_fee_per_gas <= 100 * GWEI
    assert replacement.max_priority_fee_per_gas >= bumped(signed.max_priority_fee_per_gas, 0)
    assert not known_to_node(net, signed.tx_hash)
    assert net.w3.eth.get_transaction_count(keeper_account.address) == nonce + 1
    [event] = net.vault.events.Rebalanced().get_logs(from_block=receipt["blockNumber"])
    assert event["args"]["decision_hash"] == b"\x01" * 32  # the same call, re-signed from the stored bytes
    assert reason in caplog.text


def test_resume_with_the_base_fee_above_the_cap_signs_nothing(net, keeper_account):
    sender = sender_of(net, keeper_account, max_fee_gwei=3)
    nonce = net.w3.eth.get_transaction_count(keeper_account.address)
    journal = crashed_send(net, sender)
    net.rpc("anvil_setNextBlockBaseFeePerGas", hex(5 * GWEI))
    net.rpc("evm_mine")
    resumed = []
    with pytest.raises(TimeExhausted, match=r"has a max fee of [\d.]+ gwei, below the base fee; the fee cap 3 gwei "
                                            "leaves no room for a replacement at the base fee 5 gwei"):
        sender.resume(journal, on_signed=resumed.append)
    assert resumed == [] and not known_to_node(net, journal[0].tx_hash)
    assert net.w3.eth.get_transaction_count(keeper_account.address) == nonce


def test_resume_needs_the_versions_of_one_nonce(net, keeper_account):
    sender = sender_of(net, keeper_account)
    with pytest.raises(ValueError, match="at least one journaled version"):
        sender.resume([])
    versions = [PendingTx(nonce=nonce, tx_hash=b"\x01" * 32, raw_tx=b"", max_fee_per_gas=1,
                          max_priority_fee_per_gas=1, gas_limit=21_000, built_on=None) for nonce in (3, 4)]
    with pytest.raises(ValueError, match=r"versions of one nonce, got nonces \[3, 4\]"):
        sender.resume(versions)


def test_resume_refuses_a_transaction_another_key_signed(net, keeper_account):
    """After a key rotation the journal may hold a transaction of the old key: its nonce is not ours to judge."""
    journal = crashed_send(net, sender_of(net, keeper_account))
    rotated = Account.create()
    with pytest.raises(TxError, match=f"was signed by {keeper_account.address}, not by this key {rotated.address}"):
        sender_of(net, rotated).resume(journal)
    assert not known_to_node(net, journal[0].tx_hash)


@pytest.mark.parametrize(("base_fee", "used", "expected"), [
    (10**9, 15_000_000, 10**9),  # at the target: unchanged
    (10**9, 30_000_000, 1_125_000_000),  # a full block: +12.5 %
    (10**9, 0, 875_000_000),  # an empty block: -12.5 %
    (10**9, 22_500_000, 1_062_500_000),
    (100, 15_000_001, 101),  # above the target: at least +1 wei
])
def test_the_next_base_fee_follows_eip_1559(base_fee, used, expected):
    assert next_base_fee({"baseFeePerGas": base_fee, "gasUsed": used, "gasLimit": 30_000_000}) == expected


def test_the_next_base_fee_agrees_with_anvil(net, keeper_account):
    fund_vault(net)
    latest = net.w3.eth.get_block("latest")
    net.rpc("evm_mine")
    assert net.w3.eth.get_block("latest")["baseFeePerGas"] == next_base_fee(latest)


def test_transactions_are_signed_by_the_c_backend_with_the_pure_python_ones_signatures() -> None:
    # coincurve (libsecp256k1) signs 26x faster; RFC 6979 nonces make its signatures the pure-Python backend's
    from eth_keys import KeyAPI
    from eth_keys.backends import CoinCurveECCBackend, NativeECCBackend

    assert isinstance(KeyAPI().backend, CoinCurveECCBackend)
    key = bytes.fromhex("42" * 32)
    digests = [bytes([i]) * 32 for i in range(1, 6)]
    native, c = KeyAPI(NativeECCBackend), KeyAPI(CoinCurveECCBackend)
    assert [native.PrivateKey(key).sign_msg_hash(d) for d in digests] == [c.PrivateKey(key).sign_msg_hash(d)
                                                                          for d in digests]


def test_a_stale_transaction_never_broadcast_is_abandoned_and_its_nonce_left_free(net, keeper_account):
    sender = sender_of(net, keeper_account)
    journal = crashed_send(net, sender)
    with pytest.raises(Abandoned, match="never broadcast again: stale decision"):
        sender_of(net, keeper_account).resume(journal, stale="stale decision")
    assert net.w3.eth.get_transaction_count(keeper_account.address, "pending") == journal[0].nonce


def test_a_stale_transaction_the_node_holds_is_cancelled_on_its_nonce_and_never_mined(net, keeper_account):
    # broadcast before the crash, still in the pool when its decision went stale: it could be mined any time later
    sender = sender_of(net, keeper_account, receipt_timeout_s=0.3, max_replacements=0)
    journal = crashed_send(net, sender)
    [original] = journal
    signed: list[PendingTx] = []
    with manual_mining(net.w3):
        with pytest.raises(TimeExhausted):
            sender.resume(journal)  # broadcast again, not mined
        assert known_to_node(net, original.tx_hash)
        restarted = sender_of(net, keeper_account, receipt_timeout_s=10)
        thread, result = in_background(lambda: restarted.resume(journal, on_signed=signed.append,
                                                                stale="stale decision"))
        wait_until(lambda: len(signed) == 1 and known_to_node(net, signed[0].tx_hash))
        net.rpc("evm_mine")
        finished(thread)
    [cancel] = signed  # journaled before broadcast, on the same nonce, above the original's fees
    assert cancel.nonce == original.nonce and cancel.max_fee_per_gas > original.max_fee_per_gas
    error = result["error"]
    assert isinstance(error, Abandoned) and f"cancelled by {to_hex(cancel.tx_hash)}" in str(error), result
    mined = net.w3.eth.get_transaction(cancel.tx_hash)
    assert (mined["to"], mined["value"], mined["input"]) == (keeper_account.address, 0, b"")
    with pytest.raises(TransactionNotFound):
        net.w3.eth.get_transaction_receipt(original.tx_hash)
    assert net.vault.events.Rebalanced().get_logs(from_block=0) == []
    with pytest.raises(Abandoned, match="cancelled by"):  # a later restart reads the cancel's receipt
        sender_of(net, keeper_account).resume([original, cancel])
