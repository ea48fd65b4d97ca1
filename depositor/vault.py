"""The vault as a depositor sees it: `chain.vault_reader.VaultReader` for every vault read, the asset token
for the account's balance and allowance, and amounts written with the right decimals and symbols.

`open_vault` finds the RPC URL and vault address from --rpc/--vault or the devnet deployment JSON.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from eth_abi.exceptions import DecodingError
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import BadFunctionCallOutput, ContractLogicError

from chain.deployment import RPC_URL, Deployment
from chain.vault_reader import VaultReader
from depositor.errors import BadInput, NotAVault, quoted
from strategy.units import DISPLAY_PLACES, format_units
from vaultbot.redact import redact

RPC_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class DepositorVault:
    w3: Web3
    reader: VaultReader
    asset: Contract  # the ERC-20 the vault holds
    name: str
    symbol: str
    decimals: int
    asset_symbol: str
    asset_decimals: int
    chain_id: int

    @property
    def contract(self) -> Contract:
        return self.reader.contract

    @property
    def address(self) -> str:
        return self.reader.contract.address

    def asset_balance(self, account: str) -> int:
        return self.asset.functions.balanceOf(account).call()

    def asset_allowance(self, account: str) -> int:
        return self.asset.functions.allowance(account, self.address).call()

    def assets_text(self, assets: int, *, places: int = DISPLAY_PLACES) -> str:
        return format_units(assets, self.asset_decimals, self.asset_symbol, places=places)

    def shares_text(self, shares: int, *, places: int = DISPLAY_PLACES) -> str:
        return format_units(shares, self.decimals, f"{self.symbol} shares", places=places)

    def share_price_text(self) -> str:
        return f"{self.assets_text(self.reader.snapshot().price_per_share)} per share"


def open_vault(rpc: str | None, vault: str | None, deployment_json: Path) -> DepositorVault:
    """Connect to the vault named by --rpc/--vault, filling what is missing from the devnet deployment JSON."""
    from chain.rpc import connect

    rpc_url, address, deployment = _location(rpc, vault, deployment_json)
    if not Web3.is_address(address):
        raise BadInput(f"--vault {address!r} is not an address (0x + 40 hex digits)")
    if address[2:] not in (address[2:].lower(), address[2:].upper()) and not Web3.is_checksum_address(address):
        raise BadInput(f"--vault {address}: its mixed case is not its EIP-55 checksum (a mistyped digit?)")
    if rpc is not None and not re.match(RPC_URL, rpc):  # the JSON's own is checked when it is read
        raise BadInput(f"`rpc` {quoted(redact(rpc))} is not an http(s) URL", "rpc")
    # the devnet JSON's node must serve its chain; a URL given alone serves whatever it serves
    w3 = connect([rpc_url], RPC_TIMEOUT_S, chain_id=None if deployment is None or rpc is not None
                 else deployment.chain_id)
    try:
        reader = VaultReader(w3, Web3.to_checksum_address(address), deployment)
    except FileNotFoundError as error:  # the deployment JSON's abi_dir
        raise BadInput(f"{deployment_json}: {error}") from error
    try:
        snapshot = reader.snapshot()
        asset = w3.eth.contract(address=Web3.to_checksum_address(snapshot.asset), abi=reader.asset_abi)
        asset_symbol = asset.functions.symbol().call()
    except (BadFunctionCallOutput, ContractLogicError, DecodingError) as error:
        # no code there, another contract (the token, a market), or a node whose answers decode to nothing
        why = _why(w3, reader.contract.address, error)
        raise NotAVault(f"{address} on {redact(rpc_url)} does not answer as this vault does ({why}): is "
                        "--vault the vault's address and --rpc its chain?") from error
    return DepositorVault(w3, reader, asset, snapshot.name, snapshot.symbol, snapshot.decimals,
                          asset_symbol, snapshot.asset_decimals, w3.eth.chain_id)


def _why(w3: Web3, address: ChecksumAddress, error: Exception) -> str:
    """Why `address` failed the vault's views: the chain says whether any code is there (web3's wording of the
    error is no contract to rely on), the error what the code there did."""
    if not w3.eth.get_code(address):  # an account, a mistyped address, a vault on another chain
        return "no contract at that address"
    if isinstance(error, ContractLogicError):
        return "a view reverted"
    return "its answers do not decode"


def _location(rpc: str | None, vault: str | None, path: Path) -> tuple[str, str, Deployment | None]:
    """The RPC URL and the vault address, each given or else from the deployment JSON (read when it exists)."""
    if rpc is not None and vault is not None and not path.is_file():
        return rpc, vault, None
    try:
        deployment = Deployment.load(path)
    except FileNotFoundError as error:
        raise BadInput(f"give --rpc and --vault, or start a devnet: {error}") from error
    except ValueError as error:
        raise BadInput(str(error)) from error
    return (deployment.rpc_url if rpc is None else rpc, deployment.vault if vault is None else vault,
            deployment)
