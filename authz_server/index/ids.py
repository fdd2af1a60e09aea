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


# The texts of the ids read lately: a decision reads its key's id several times (the
# identity, the decision line, usage), and formatting 32 hex digits costs more than a
# lookup. Bounded: emptied when full, so it holds the ids in use, not every id.
_TEXTS: dict[int, str] = {}
_TEXTS_MAX = 65_536


def id_text(value: StoredId) -> str:
    """The id as admin_api spelled it (leading zeros included)."""
    if isinstance(value, str):
        return value
    text = _TEXTS.get(value)
    if text is None:
        if len(_TEXTS) >= _TEXTS_MAX:
            _TEXTS.clear()
        text = _TEXTS[value] = f"{value:032x}"
    return text
