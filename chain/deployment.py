"""The devnet deployment JSON: where a deployed vault, its asset and markets are, and the ABIs to call them.

Written by `devnet.deploy.deploy_devnet`; read by the keeper (`chain.deployment` in the config), the
backtester's chain mode and the depositor tools. Only reading it lives here, so production code that is
pointed at a devnet never imports the devnet tooling.
"""

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, ValidationError
from web3 import Web3
from web3.contract import Contract

from strategy.safe_json import loads

RPC_URL = r"^https?://[^/\s]+"  # what an RPC URL must look like to be tried: http(s), with a host


def _checksum_address(value: str) -> str:
    """`value` as a checksummed address; ValueError if it is not 0x and 40 hex digits (web3 would raise its own
    ValueError only at the first call that uses it). The one check of an address a file or a config gives."""
    if not Web3.is_address(value):
        raise ValueError(f"{value!r} is not an Ethereum address (0x + 40 hex digits)")
    return Web3.to_checksum_address(value)


Address = Annotated[str, AfterValidator(_checksum_address)]


class MarketInfo(BaseModel):
    address: Address
    name: str
    apy: float


class Deployment(BaseModel):
    """Everything a client needs to talk to a deployed devnet (the devnet JSON)."""

    rpc_url: Annotated[str, Field(pattern=RPC_URL)]
    chain_id: int
    asset: Address
    vault: Address
    markets: list[MarketInfo]
    admin: Address
    keeper: Address
    guardian: Address
    depositors: list[Address]
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
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except ValidationError as error:
            problems = "; ".join(  # on one line: the CLI shows it as one
                f"{'.'.join(str(part) for part in problem['loc']) or 'file'}: "
                f"{problem['msg'].removeprefix('Value error, ')}"
                for problem in error.errors(include_url=False))
            raise ValueError(f"{path} is not a valid devnet deployment: {problems}") from error
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"{path} is not a valid devnet deployment: cannot read it: {error}") from error

    def contract(self, w3: Web3, name: str, address: str) -> Contract:
        """A web3 contract at `address` using the ABI <abi_dir>/<name>.json."""
        abi_path = Path(self.abi_dir) / f"{name}.json"
        try:
            abi = loads(abi_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:  # abi_dir moved or deleted since the deployment; not JSON
            raise ValueError(f"cannot read the ABI {abi_path} (abi_dir of the deployment): "
                             f"{getattr(error, 'strerror', None) or error}") from error
        return w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)
