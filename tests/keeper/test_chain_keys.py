"""chain.keys: keystores with the password from a variable or a file, raw keys on the devnet only."""

import hashlib
import json
import re
import time
from pathlib import Path

import pytest
from eth_account import Account
from eth_keyfile.keyfile import create_keyfile_json, encrypt_aes_ctr
from eth_utils import keccak

from chain.keys import DEVNET_CHAIN_ID, KeyLoadError, load_account

PASSWORD = "correct horse"
KEY = "0x" + "4c" * 32


@pytest.fixture
def keystore(tmp_path: Path) -> Path:
    path = tmp_path / "keeper.json"
    # pbkdf2 with few iterations keeps the test fast; load_account reads any eth-account keystore
    path.write_text(json.dumps(Account.encrypt(KEY, PASSWORD, kdf="pbkdf2", iterations=1000)))
    return path


def test_keystore_with_password_from_a_variable(keystore, monkeypatch):
    monkeypatch.setenv("TEST_KEEPER_PASSWORD", PASSWORD)
    account = load_account(keystore, password_env="TEST_KEEPER_PASSWORD")
    assert account.address == Account.from_key(KEY).address


def test_keystore_with_password_from_a_file(keystore, tmp_path):
    password = tmp_path / "password"
    password.write_text(PASSWORD + "\n")  # the final newline an editor adds is not part of it
    assert load_account(keystore_path=keystore, password_file=password).address == Account.from_key(KEY).address


def test_scrypt_keystore_as_geth_writes_it(tmp_path, monkeypatch):
    path = tmp_path / "scrypt.json"
    path.write_text(json.dumps(Account.encrypt(KEY, PASSWORD)))
    monkeypatch.setenv("PW", PASSWORD)
    assert load_account(path, password_env="PW").address == Account.from_key(KEY).address


def test_wrong_password(keystore, monkeypatch):
    monkeypatch.setenv("PW", "battery staple")
    with pytest.raises(KeyLoadError, match=f"wrong password for keystore {keystore}") as raised:
        load_account(keystore, password_env="PW")
    assert "battery" not in str(raised.value)


@pytest.mark.parametrize(("arguments", "expected"), [
    ({"password_env": "NOT_SET_ANYWHERE"}, r"password variable \$NOT_SET_ANYWHERE is not set"),
    ({"password_file": "/nonexistent/password"}, "cannot read the keystore password file /nonexistent/password"),
    ({}, "exactly one of a password variable and a password file"),
    ({"password_env": "A", "password_file": "b"}, "exactly one of a password variable and a password file"),
])
def test_password_source_errors(keystore, arguments, expected):
    with pytest.raises(KeyLoadError, match=expected):
        load_account(keystore, **arguments)


def test_a_password_file_that_is_not_utf8(keystore, tmp_path):
    password = tmp_path / "password"
    password.write_bytes(b"\xff\xfe" + PASSWORD.encode("utf-16-le"))  # a UTF-16 file, as Windows' Notepad saves
    with pytest.raises(KeyLoadError, match=re.escape(f"the keystore password file {password} is not UTF-8 text")):
        load_account(keystore, password_file=password)


@pytest.mark.parametrize("version", [99, "3", True, None])
def test_a_keystore_of_another_version(keystore, monkeypatch, version):
    keystore.write_text(json.dumps({**json.loads(keystore.read_text()), "version": version}))
    monkeypatch.setenv("PW", PASSWORD)
    with pytest.raises(KeyLoadError, match=re.escape(f"keystore {keystore}: unsupported keystore version "
                                                     f"{version!r} (only version 3, a JSON number)")):
        load_account(keystore, password_env="PW")


def test_a_version_4_keystore_is_refused_not_read_as_an_account_key(tmp_path, monkeypatch):
    """eth-keyfile decrypts EIP-2335's version 4, a BLS validator key: as an account key it would sign for an
    address nobody chose."""
    path = tmp_path / "validator.json"
    path.write_text(json.dumps(create_keyfile_json(bytes.fromhex(KEY[2:]), PASSWORD.encode(), version=4,
                                                   kdf="pbkdf2", iterations=1000)))
    monkeypatch.setenv("PW", PASSWORD)
    with pytest.raises(KeyLoadError, match=re.escape(f"keystore {path}: unsupported keystore version 4 "
                                                     "(only version 3, a JSON number)")):
        load_account(path, password_env="PW")


def kdf_params(keystore: Path, kdf: str, **params: object) -> dict[str, object]:
    """The keystore's JSON with another KDF and its parameters (the MAC left stale: it is never reached)."""
    document = json.loads(keystore.read_text())
    document["crypto"] |= {"kdf": kdf, "kdfparams": params}
    return document


# What wallets write: geth's standard and light scrypt, eth-account's pbkdf2 default, all under the bounds.
SCRYPT = {"n": 2**18, "r": 8, "p": 1, "dklen": 32, "salt": "ab" * 16}
PBKDF2 = {"c": 1_000_000, "dklen": 32, "prf": "hmac-sha256", "salt": "ab" * 16}


@pytest.mark.parametrize(("kdf", "params", "says"), [
    ("scrypt", SCRYPT | {"n": 2**30}, "its scrypt n*r*p is over 8,388,608"),  # 128 GiB of memory
    ("scrypt", SCRYPT | {"n": 2**14, "p": 2**10}, "its scrypt n*r*p is over 8,388,608"),  # 16 MiB, 1,024 times
    ("scrypt", SCRYPT | {"r": 2**4000}, "its scrypt n*r*p is over 8,388,608"),  # a number past any float
    ("pbkdf2", PBKDF2 | {"c": 10**9}, "its pbkdf2 rounds c is over 10,000,000"),
    ("pbkdf2", PBKDF2 | {"dklen": 2**30}, "its pbkdf2 dklen is not between 32 and 64 bytes"),
    ("scrypt", SCRYPT | {"dklen": 16}, "its scrypt dklen is not between 32 and 64 bytes"),
    ("scrypt", SCRYPT | {"n": "1024"}, "its scrypt parameter n is not a positive integer"),
    ("scrypt", SCRYPT | {"p": True}, "its scrypt parameter p is not a positive integer"),
    ("pbkdf2", PBKDF2 | {"c": 0}, "its pbkdf2 parameter c is not a positive integer"),
    ("pbkdf2", {k: v for k, v in PBKDF2.items() if k != "c"}, "its pbkdf2 parameter c is not a positive integer"),
    ("pbkdf2", PBKDF2 | {"prf": "sha256"}, "its pbkdf2 prf is not hmac-sha256"),  # eth-keyfile asserted on it
    ("argon2", PBKDF2, "its key derivation function is neither scrypt nor pbkdf2"),
])
def test_a_key_derivation_past_the_bounds_is_refused_before_it_runs(keystore, monkeypatch, kdf, params, says):
    """A keystore sets its own KDF cost, paid before the password can be checked: minutes of work or more memory
    than the machine has, refused at once in one line."""
    keystore.write_text(json.dumps(kdf_params(keystore, kdf, **params)))
    monkeypatch.setenv("PW", PASSWORD)
    started = time.monotonic()
    with pytest.raises(KeyLoadError, match=re.escape(f"keystore {keystore}: {says}")):
        load_account(keystore, password_env="PW")
    assert time.monotonic() - started < 1.0  # nothing was derived


def test_the_bounds_apply_to_names_in_any_case(keystore, monkeypatch):
    """eth-keyfile reads "Crypto" and "KDFParams" as it reads "crypto" and "kdfparams": so do the bounds."""
    document = kdf_params(keystore, "scrypt", **(SCRYPT | {"n": 2**30}))
    crypto = document.pop("crypto")
    crypto["KDFParams"] = {key.upper(): value for key, value in crypto.pop("kdfparams").items()}
    keystore.write_text(json.dumps({**document, "Crypto": crypto, "Version": document.pop("version")}))
    monkeypatch.setenv("PW", PASSWORD)
    with pytest.raises(KeyLoadError, match="its scrypt n\\*r\\*p is over"):
        load_account(keystore, password_env="PW")


def test_a_keystore_as_geth_light_writes_it_is_within_the_bounds(tmp_path, monkeypatch):
    path = tmp_path / "light.json"
    light = create_keyfile_json(bytes.fromhex(KEY[2:]), PASSWORD.encode(), kdf="scrypt", iterations=4096)
    light["crypto"]["kdfparams"]["p"] = 6  # geth's LightScryptP; eth-keyfile writes p=1, so derive again
    params = light["crypto"]["kdfparams"]
    derived = hashlib.scrypt(PASSWORD.encode(), salt=bytes.fromhex(params["salt"]), n=params["n"], r=params["r"],
                             p=params["p"], dklen=params["dklen"])
    light["crypto"]["ciphertext"] = encrypt_aes_ctr(bytes.fromhex(KEY[2:]), derived[:16],
                                                    int(light["crypto"]["cipherparams"]["iv"], 16)).hex()
    light["crypto"]["mac"] = keccak(derived[16:32] + bytes.fromhex(light["crypto"]["ciphertext"])).hex()
    path.write_text(json.dumps(light))
    monkeypatch.setenv("PW", PASSWORD)
    assert load_account(path, password_env="PW").address == Account.from_key(KEY).address


def test_a_keystore_that_decrypts_to_no_key_is_one_line(keystore, monkeypatch):
    """The right password and MAC over a 16-byte ciphertext: a key eth-account cannot use."""
    document = json.loads(keystore.read_text())
    params = document["crypto"]["kdfparams"]
    derived = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), bytes.fromhex(params["salt"]), params["c"],
                                  params["dklen"])
    ciphertext = bytes.fromhex(document["crypto"]["ciphertext"])[:16]
    document["crypto"]["ciphertext"] = ciphertext.hex()
    document["crypto"]["mac"] = keccak(derived[16:32] + ciphertext).hex()
    keystore.write_text(json.dumps(document))
    monkeypatch.setenv("PW", PASSWORD)
    with pytest.raises(KeyLoadError, match=f"keystore {keystore} decrypts to no secp256k1 private key"):
        load_account(keystore, password_env="PW")


def test_missing_and_broken_keystores(tmp_path, monkeypatch):
    monkeypatch.setenv("PW", PASSWORD)
    with pytest.raises(KeyLoadError, match=f"keystore file {tmp_path / 'none.json'} does not exist"):
        load_account(tmp_path / "none.json", password_env="PW")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(KeyLoadError, match="is not readable JSON"):
        load_account(broken, password_env="PW")
    broken.write_text("[" * 100_000)  # deeper than json.loads can recurse without overflowing the C stack
    with pytest.raises(KeyLoadError, match="is not readable JSON"):
        load_account(broken, password_env="PW")
    broken.write_text("[]")
    with pytest.raises(KeyLoadError, match="not an eth-account keystore \\(not a JSON object\\)"):
        load_account(broken, password_env="PW")
    wrong_shape = tmp_path / "shape.json"
    wrong_shape.write_text(json.dumps({"address": "ab" * 20}))
    with pytest.raises(KeyLoadError, match="not an eth-account keystore|cannot be decrypted"):
        load_account(wrong_shape, password_env="PW")


def test_raw_key_on_the_devnet_only(monkeypatch):
    monkeypatch.setenv("RAW_KEY", KEY)
    account = load_account(raw_key_env="RAW_KEY", chain_id=DEVNET_CHAIN_ID)
    assert account.address == Account.from_key(KEY).address
    for chain_id in (1, None):
        with pytest.raises(KeyLoadError, match=f"allowed only on the devnet .* not on chain {chain_id}") as raised:
            load_account(raw_key_env="RAW_KEY", chain_id=chain_id)
        assert KEY[2:] not in str(raised.value)


def test_raw_key_errors_never_show_the_value(monkeypatch):
    monkeypatch.setenv("RAW_KEY", "0x1234nothex")
    with pytest.raises(KeyLoadError, match=r"\$RAW_KEY does not hold a private key") as raised:
        load_account(raw_key_env="RAW_KEY", chain_id=DEVNET_CHAIN_ID)
    assert "1234nothex" not in str(raised.value)
    monkeypatch.delenv("RAW_KEY")
    with pytest.raises(KeyLoadError, match=r"\$RAW_KEY is not set"):
        load_account(raw_key_env="RAW_KEY", chain_id=DEVNET_CHAIN_ID)


def test_exactly_one_key_source(keystore):
    with pytest.raises(KeyLoadError, match="exactly one of a keystore file and a raw-key variable"):
        load_account()
    with pytest.raises(KeyLoadError, match="exactly one of a keystore file and a raw-key variable"):
        load_account(keystore, raw_key_env="X", password_env="Y")
