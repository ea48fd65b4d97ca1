"""chain.keys: keystores with the password from a variable or a file, raw keys on the devnet only."""

import json
import re
from pathlib import Path

import pytest
from eth_account import Account

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


@pytest.mark.parametrize("version", [99, "3"])
def test_a_keystore_of_another_version(keystore, monkeypatch, version):
    keystore.write_text(json.dumps({**json.loads(keystore.read_text()), "version": version}))
    monkeypatch.setenv("PW", PASSWORD)
    with pytest.raises(KeyLoadError, match=re.escape(f"keystore {keystore}: unsupported keystore version "
                                                     f"{version!r} (only version 3, a JSON number)")):
        load_account(keystore, password_env="PW")


def test_missing_and_broken_keystores(tmp_path, monkeypatch):
    monkeypatch.setenv("PW", PASSWORD)
    with pytest.raises(KeyLoadError, match=f"keystore file {tmp_path / 'none.json'} does not exist"):
        load_account(tmp_path / "none.json", password_env="PW")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(KeyLoadError, match="is not readable JSON"):
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
