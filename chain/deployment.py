"""The devnet deployment JSON: where a deployed vault, its asset and markets are, and the ABIs to call them.

Written by `devnet.deploy.deploy_devnet`; read by the keeper (`chain.deployment` in the config), the
backtester's chain mode and the depositor tools. Only reading it lives here, so production code that is
pointed at a devnet never imports the devnet tooling.
"""

import json
from pathlib import Path

from pydantic import BaseModel, ValidationError
from web3 import Web3
from web3.contract import Contract


class MarketInfo(BaseModel):
    address: str
    name: str
    apy: float


class Deployment(BaseModel):
    """Everything a client needs to talk to a deployed devnet (the devnet JSON)."""

    rpc_url: str
    chain_id: int
    asset: str
    vault: str
    markets: list[MarketInfo]
    admin: str
    keeper: str
    guardian: str
    depositors: list[str]
    abi_dir: str
    deployed_at: int  # block number of the last deployment transaction
    anvil_pid: int | None = None

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> "Deployment":
        if not path.is_file():
            raise FileNotFoundError(f"no devnet deployment at {path}; start one with `vaultbot devnet up`")
        try:
            return cls.model_validate_json(path.read_text())
        except ValidationError as error:
            raise ValueError(f"{path} is not a valid devnet deployment: {error}") from error

    def contract(self, w3: Web3, name: str, address: str) -> Contract:
        """A web3 contract at `address` using the ABI <abi_dir>/<name>.json."""
        abi_path = Path(self.abi_dir) / f"{name}.json"
        return w3.eth.contract(address=Web3.to_checksum_address(address), abi=json.loads(abi_path.read_text()))
