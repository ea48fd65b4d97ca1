"""The signing key: an encrypted eth-account keystore (password from a variable or a file), or on the devnet only
a raw private key from an environment variable.

Messages name the file or variable that is wrong, never the key or the password.
"""

import json
import os
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

DEVNET_CHAIN_ID = 31337  # anvil's default chain: its accounts' keys are public, so a raw key is acceptable there


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
        keystore = json.loads(path.read_text())
    except FileNotFoundError:
        raise KeyLoadError(f"keystore file {path} does not exist") from None
    except (OSError, ValueError) as error:
        raise KeyLoadError(f"keystore file {path} is not readable JSON: {error}") from None
    try:
        key = Account.decrypt(keystore, password)
    except ValueError as error:
        if "MAC mismatch" in str(error):
            raise KeyLoadError(f"wrong password for keystore {path}") from None
        raise KeyLoadError(f"keystore {path} cannot be decrypted: {error}") from None
    except (KeyError, TypeError) as error:
        raise KeyLoadError(f"keystore {path} is not an eth-account keystore (missing {error})") from None
    except NotImplementedError:  # eth-keyfile's "Not yet implemented" for a version it has no decoder for
        raise KeyLoadError(f"keystore {path}: unsupported keystore version {keystore.get('version')!r} "
                           "(only version 3, a JSON number)") from None
    return Account.from_key(key)


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
