"""Times from the world's values: ISO 8601 texts read as aware datetimes, China Standard
Time (``CHINA``, +08:00) when they carry no offset.

The server's edge, the command line and the events' files read times here; the core takes
the aware datetimes this returns.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from geoservice.errors import InvalidInput, shown

CHINA = timezone(timedelta(hours=8), "CST")


def in_china(when: datetime) -> datetime:
    """An aware time as given; a naive one read as China Standard Time (+08:00)."""
    return when if when.tzinfo is not None else when.replace(tzinfo=CHINA)


def parse_time(value: Any, where: str) -> datetime:
    """``value`` read as an ISO 8601 time; without an offset, China Standard Time.

    ``where`` names the value in the ``InvalidInput`` raised when it is not a text or not
    such a time.
    """
    if not isinstance(value, str):
        msg = (
            f"{where} is {shown(value)}; expected an ISO 8601 time such as "
            "2026-11-29T09:30:00+08:00"
        )
        raise InvalidInput(msg)
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        msg = f"{where} {shown(value)} is not an ISO 8601 time (2026-11-29T09:30:00+08:00)"
        raise InvalidInput(msg) from None
    return in_china(when)
