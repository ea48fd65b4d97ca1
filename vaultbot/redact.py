"""Secrets out of URLs before they are shown: the one rule for every message, log line and printed URL.

RPC providers put credentials in the URL itself: `https://user:pass@host/...` (userinfo), `?key=...`,
`?apikey=...`, `?token=...` (query parameters), Infura's `/v3/<32 hex>`, Alchemy's `/v2/<key>` and other
long key-like path segments. `redact` masks each with `***` wherever a URL appears in a text, keeping the
scheme, host, port and the rest of the path so that a message still says which endpoint failed:

    https://user:pass@host/v3/0123456789abcdef0123456789abcdef?apikey=s3cr3t&chain=1
    -> https://***@host/v3/***?apikey=***&chain=1
"""

import re

MASK = "***"

# also a URL missing the colon of its scheme ("postgresql//user:pass@..."), as a mistyped config quotes it
_URL = re.compile(r"""\b[a-z][a-z0-9+.-]*:?//[^\s'"<>()\\]+""", re.IGNORECASE)
_PARTS = re.compile(r"(?P<origin>[^:/]+:?//[^/?#]*)(?P<path>[^?#]*)(?P<query>.*)", re.DOTALL)
_USERINFO = re.compile(r"(?<=//)[^/?#@]*@")
# any path segment of 32 or more letters and digits (hex keys; UUIDs and names have dashes or are shorter)
_KEY_SEGMENT = re.compile(r"(?<=/)[A-Za-z0-9]{32,}(?![A-Za-z0-9])")
# The next two also apply outside a whole URL: request lines and urllib3's messages name only the path and
# query ("POST /v3/<key>?apikey=... HTTP/1.1", "Max retries exceeded with url: /v3/<key>").
# the segment after a version segment: /v2/<key> (Alchemy), /v3/<key> (Infura)
_VERSIONED_KEY = re.compile(r"(?P<version>/v\d+/)[A-Za-z0-9_-]{8,}")
# a query parameter whose name says it holds a secret: key, apikey, api_key, token, access_token, password...
_SECRET_PARAMETER = re.compile(r"(?P<name>[?&;#][a-z0-9_.-]*(?:key|token|secret|password|auth)[a-z0-9_.-]*=)"
                               r"""[^&;#\s'"]*""", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with the credentials of every URL in it masked (see the module docstring)."""
    text = _URL.sub(lambda match: _redacted_url(match.group()), text)
    return _SECRET_PARAMETER.sub(rf"\g<name>{MASK}", _VERSIONED_KEY.sub(rf"\g<version>{MASK}", text))


def _redacted_url(url: str) -> str:
    parts = _PARTS.fullmatch(url)
    if parts is None:  # no host part (e.g. "x://"): nothing to mask
        return url
    return _USERINFO.sub(f"{MASK}@", parts["origin"]) + _KEY_SEGMENT.sub(MASK, parts["path"]) + parts["query"]
