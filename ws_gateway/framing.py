"""WebSocket frames built once and written to many clients (RFC 6455, section 5.2).

A server's frames are not masked, so one text frame is the same bytes for every client: the
hub frames each message once and the links write those bytes as they are. This works only
without per-connection extensions (the gateway disables permessage-deflate, whose cost would
be one compression per client per message anyway).
"""

from __future__ import annotations

import struct
from typing import Final

_TEXT_FIN: Final = 0x81
_SHORT: Final = struct.Struct("!BBH")
_LONG: Final = struct.Struct("!BBQ")


def text_frame(payload: bytes) -> bytes:
    """``payload`` (UTF-8 text) as one final, unmasked text frame."""
    size = len(payload)
    if size < 126:
        return bytes((_TEXT_FIN, size)) + payload
    if size < 65536:
        return _SHORT.pack(_TEXT_FIN, 126, size) + payload
    return _LONG.pack(_TEXT_FIN, 127, size) + payload
