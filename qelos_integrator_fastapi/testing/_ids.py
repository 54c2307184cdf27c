from __future__ import annotations

import itertools
import secrets
import uuid
from datetime import UTC, datetime

_counter = itertools.count(secrets.randbelow(0xFFFFFF))


def object_id(now: float) -> str:
    return f"{int(now) & 0xFFFFFFFF:08x}{secrets.token_hex(5)}{next(_counter) & 0xFFFFFF:06x}"


def is_object_id(value: str) -> bool:
    return len(value) == 24 and all(char in "0123456789abcdefABCDEF" for char in value)


def uuid7(now: float) -> str:
    millis = int(now * 1000) & ((1 << 48) - 1)
    value = (millis << 80) | (0x7 << 76) | (secrets.randbits(12) << 64) | (0b10 << 62) | secrets.randbits(62)
    return str(uuid.UUID(int=value))


def iso_time(now: float) -> str:
    moment = datetime.fromtimestamp(now, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
