"""Entity ids as the index holds them when there are millions: admin_api's ids are
`uuid4().hex`, 32 lowercase hex characters (a 96-byte str each); the 128-bit int they
spell takes 48 bytes and is not tracked by the cyclic GC. Any other id stays a str, and
the two forms never collide: an int only ever stands for its own 32-hex spelling.
"""

from __future__ import annotations

import re

StoredId = str | int

_UUID_HEX = re.compile(r"[0-9a-f]{32}")


def stored_id(text: str) -> StoredId:
    """The compact form of an id: what the index files it under."""
    if len(text) == 32 and _UUID_HEX.fullmatch(text):
        return int(text, 16)
    return text


def id_text(value: StoredId) -> str:
    """The id as admin_api spelled it (leading zeros included)."""
    return value if isinstance(value, str) else f"{value:032x}"
