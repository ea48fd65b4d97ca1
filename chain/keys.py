"""The signing key: an encrypted eth-account keystore (password from a variable or a file), or on the devnet only
a raw private key from an environment variable.

Messages name the file or variable that is wrong, never the key or the password.
"""

import os
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from strategy.safe_json import loads

DEVNET_CHAIN_ID = 31337  # anvil's default chain: its accounts' keys are public, so a raw key is acceptable there

KEYSTORE_VERSION = 3  # Web3 Secret Storage; eth-keyfile's version 4 is EIP-2335's BLS validator key, no account key
# A keystore names its own key-derivation cost, and decrypting pays it before the password can be checked: a
# file asking for scrypt N=2**30 would take minutes and 128 GiB. The bounds are far above what wallets write
# (geth's standard scrypt is N=2**18, r=8, p=1: 2**21; eth-account's pbkdf2 is 1,000,000 rounds).
SCRYPT_MAX_NRP = 2**23  # N·r·p, the work in 128-byte blocks; so 128·N·r, scrypt's memory, stays within 1 GiB
PBKDF2_MAX_ROUNDS = 10_000_000
DKLEN_RANGE = (32, 64)  # the MAC and the cipher key take the first 32 bytes; more only costs more


class KeyLoadError(ValueError):
    """The key cannot be loaded; the message names the file or variable to fix."""


def load_account(keystore_path: Path | str | None = None, *, password_env: str | None = None,
                 password_file: Path | str | None = None, raw_key_env: str | None = None,
                 chain_id: int | None = None) -> LocalAccount:
    """The account of a keystore (exactly one of password_env / password_file), or of the raw key in
    $raw_key_env when `chain_id` is the devnet's."""
    if raw_key_env is not None and keystore_path is None:
        return _raw_key_account(raw_key_env, chain_id)
    if keystore_path is not None and raw_key_env is None:
        return _keystore_account(Path(keystore_path), _password(password_env, password_file))
    raise KeyLoadError("give exactly one of a keystore file and a raw-key variable")


def _password(password_env: str | None, password_file: Path | str | None) -> str:
    if password_env is not None and password_file is None:
        password = os.environ.get(password_env)
        if password is None:
            raise KeyLoadError(f"the keystore password variable ${password_env} is not set")
        return password
    if password_file is not None and password_env is None:
        path = Path(password_file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise KeyLoadError(f"cannot read the keystore password file {path}: {error.strerror or error}") from None
        except UnicodeDecodeError:  # its message quotes bytes of the password
            raise KeyLoadError(f"the keystore password file {path} is not UTF-8 text") from None
        return text.rstrip("\r\n")  # editors add a final newline; it is not part of the password
    raise KeyLoadError("a keystore needs exactly one of a password variable and a password file")


def _keystore_account(path: Path, password: str) -> LocalAccount:
    try:
        keystore = keystore_json(path)
    except FileNotFoundError:
        raise KeyLoadError(f"keystore file {path} does not exist") from None
    except (OSError, ValueError) as error:
        raise KeyLoadError(f"keystore file {path} is not readable JSON: {error}") from None
    _check_before_decrypting(path, keystore)
    try:
        key = Account.decrypt(keystore, password)
    except ValueError as error:
        if "MAC mismatch" in str(error):
            raise KeyLoadError(f"wrong password for keystore {path}") from None
        raise KeyLoadError(f"keystore {path} cannot be decrypted: {error}") from None
    except (KeyError, TypeError) as error:
        raise KeyLoadError(f"keystore {path} is not an eth-account keystore (missing {error})") from None
    try:
        return Account.from_key(key)
    except ValueError:  # a ciphertext of another length, or a number past the curve's order
        raise KeyLoadError(f"keystore {path} decrypts to no secp256k1 private key (32 bytes below the order)") from None


def keystore_json(path: Path) -> Any:
    """The JSON of a keystore file; OSError or ValueError (`strategy.safe_json`: nested too deep included)."""
    return loads(path.read_text())


def _check_before_decrypting(path: Path, keystore: object) -> None:
    """Refuse, before any key derivation, a keystore of another version or a KDF eth-keyfile would run with
    parameters past the bounds above; fields that are missing are left to decryption to name. The KDF's
    values are not quoted: a hostile one may be thousands of digits long."""
    if not isinstance(keystore, dict):
        raise KeyLoadError(f"keystore {path} is not an eth-account keystore (not a JSON object)")
    fields = _lower_names(keystore)  # eth-keyfile reads the names in any case ("Crypto" too)
    if "version" not in fields:
        raise KeyLoadError(f"keystore {path} is not an eth-account keystore (missing 'version')")
    version = fields["version"]
    if version != KEYSTORE_VERSION:  # "3" is text, not the number
        raise KeyLoadError(f"keystore {path}: unsupported keystore version {version!r} "
                           f"(only version {KEYSTORE_VERSION}, a JSON number)")
    crypto = _lower_names(fields.get("crypto"))
    if "kdf" not in crypto:
        return
    if crypto["kdf"] not in ("scrypt", "pbkdf2"):
        raise KeyLoadError(f"keystore {path}: its key derivation function is neither scrypt nor pbkdf2")
    kdf, params = crypto["kdf"], _lower_names(crypto.get("kdfparams"))
    if kdf == "pbkdf2" and params.get("prf") != "hmac-sha256":  # eth-keyfile asserts on a prf not hmac-*
        raise KeyLoadError(f"keystore {path}: its pbkdf2 prf is not hmac-sha256, the only one keystores use")
    values: dict[str, int] = {}
    for name in ("n", "r", "p", "dklen") if kdf == "scrypt" else ("c", "dklen"):
        value = params.get(name)
        if type(value) is not int or value < 1:  # true is an int to Python, not to JSON
            raise KeyLoadError(f"keystore {path}: its {kdf} parameter {name} is not a positive integer")
        values[name] = value
    low, high = DKLEN_RANGE
    if not low <= values["dklen"] <= high:
        raise KeyLoadError(f"keystore {path}: its {kdf} dklen is not between {low} and {high} bytes")
    cost, bound, what = ((values["n"] * values["r"] * values["p"], SCRYPT_MAX_NRP, "scrypt n*r*p") if kdf == "scrypt"
                         else (values["c"], PBKDF2_MAX_ROUNDS, "pbkdf2 rounds c"))
    if cost > bound:
        raise KeyLoadError(f"keystore {path}: its {what} is over {bound:,}, far beyond what wallets write; not "
                           "decrypting it (minutes of work, or more memory than the machine may have)")


def _lower_names(value: object) -> dict[str, Any]:
    """A JSON object's members under lower-cased names, as eth-keyfile reads them; anything else: none."""
    return {name.lower(): item for name, item in value.items()} if isinstance(value, dict) else {}


def _raw_key_account(variable: str, chain_id: int | None) -> LocalAccount:
    if chain_id != DEVNET_CHAIN_ID:
        raise KeyLoadError(f"a raw private key (${variable}) is allowed only on the devnet (chain {DEVNET_CHAIN_ID}), "
                           f"not on chain {chain_id}; use an encrypted keystore")
    key = os.environ.get(variable)
    if not key:
        raise KeyLoadError(f"the raw private key variable ${variable} is not set")
    try:
        return Account.from_key(key.strip())
    except (ValueError, TypeError):
        raise KeyLoadError(f"${variable} does not hold a private key (32 bytes as 64 hex digits)") from None
