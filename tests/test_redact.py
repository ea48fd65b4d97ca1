"""vaultbot.redact: the credentials of RPC and other URLs masked wherever a text names them."""

import pytest

from vaultbot.redact import redact

INFURA_KEY = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(("text", "shown"), [
    ("https://user:pass@host/path?key=abc&chain=1", "https://***@host/path?key=***&chain=1"),
    (f"https://mainnet.infura.io/v3/{INFURA_KEY}", "https://mainnet.infura.io/v3/***"),
    ("https://eth-mainnet.g.alchemy.com/v2/AbCd-ef_123456", "https://eth-mainnet.g.alchemy.com/v2/***"),
    ("https://rpc.ankr.com/eth/" + "ab" * 32, "https://rpc.ankr.com/eth/***"),
    ("wss://node.example/ws?apikey=x1&access_token=y2#api_key=z3", "wss://node.example/ws?apikey=***&access_token=***"
                                                                   "#api_key=***"),
    ("postgresql+psycopg://keeper:pw@db/keeper", "postgresql+psycopg://***@db/keeper"),
    # in a message: each URL masked, the rest kept; paths named without a host too (urllib3's messages)
    (f"tried http://u:p@127.0.0.1:9/v3/{INFURA_KEY} (ConnectionError: refused), http://b:c@h",
     "tried http://***@127.0.0.1:9/v3/*** (ConnectionError: refused), http://***@h"),
    (f"Max retries exceeded with url: /v3/{INFURA_KEY}?apikey=k (Caused by ...)",
     "Max retries exceeded with url: /v3/***?apikey=*** (Caused by ...)"),
])
def test_credentials_are_masked(text: str, shown: str) -> None:
    assert redact(text) == shown


@pytest.mark.parametrize("text", [
    "http://127.0.0.1:8545",
    "https://yields.llama.fi/chart/747c1d2a-c668-4682-b9f9-296708a3dd90?span=61",  # a pool id is no key
    "https://coins.llama.fi/chart/ethereum:0x" + "ab" * 20 + "?span=61",
    "transaction 0x" + "ab" * 32 + " (nonce 3) in block 12",
    "sqlite:////var/lib/vaultbot/keeper.sqlite",
])
def test_what_holds_no_secret_is_left_as_it_is(text: str) -> None:
    assert redact(text) == text
