"""``auto.offset.reset``: where a partition without a committed offset starts.

Mirrors Kafka's ``AutoOffsetResetStrategy`` (Kafka 4.0, KIP-1106). The values are
``earliest`` (the log start), ``latest`` (the high watermark), ``none`` (an error), and
``by_duration:<ISO-8601 duration>``, e.g. ``by_duration:PT1H`` or ``by_duration:P1DT12H``:
start at the first record written at most that long ago, i.e. the first offset whose
timestamp is at or after *now − duration* (what ``offsetsForTimes`` returns), or at the high
watermark when there is none.

The duration has Java's ``Duration.parse`` form ``PnDTnHnMn.nS``: days, then ``T`` and
hours, minutes and seconds (up to nine decimals), each part optional but at least one
present, signs allowed on the parts; a negative total is refused, as Kafka refuses it.
Example: ``P1DT2H30M`` is 1 day + 2 h + 30 min = 95,400,000 ms; ``PT0.5S`` is 500 ms.
"""

from __future__ import annotations

import math
import re

from sim.broker.list_offsets import offset_for_timestamp

BY_DURATION = "by_duration"
NAMED = ("earliest", "latest", "none")
FORMAT = "by_duration:PnDTnHnMn.nS"

_DURATION = re.compile(
    r"([-+]?)P(?:([-+]?[0-9]+)D)?"
    r"(T(?:([-+]?[0-9]+)H)?(?:([-+]?[0-9]+)M)?(?:([-+]?[0-9]+)(?:[.,]([0-9]{0,9}))?S)?)?",
    re.IGNORECASE)
_MS_PER = (86_400_000, 3_600_000, 60_000, 1000)  # D, H, M, S


def parse_duration_ms(text: str) -> float:
    """An ISO-8601 duration (Java's ``Duration.parse`` form ``PnDTnHnMn.nS``) in ms.

    Raises:
        ValueError: naming what is wrong with ``text``.
    """
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an ISO-8601 duration such as PT1H, P1D or "
                         "PT30M (form PnDTnHnMn.nS)")
    sign, days, t_part, hours, minutes, seconds, fraction = match.groups()
    if days is None and t_part is None:
        raise ValueError(f"{text!r} has neither days (nD) nor a time part (T…)")
    if t_part is not None and hours is None and minutes is None and seconds is None:
        raise ValueError(f"{text!r} has a T with no hours, minutes or seconds after it")
    total = 0.0
    for value, ms in zip((days, hours, minutes, seconds), _MS_PER, strict=True):
        if value is not None:
            total += int(value) * ms
    if fraction:
        digits = int(fraction.ljust(9, "0")) / 1e6  # nanoseconds → ms
        total += -digits if seconds.startswith("-") else digits
    return -total if sign == "-" else total


def validate(value: str) -> str | None:
    """The problem with an ``auto.offset.reset`` value, or None (a config validator)."""
    if value in NAMED:
        return None
    expected = f"the value must be earliest, latest, none or {FORMAT} (KIP-1106)"
    if value == BY_DURATION:
        return f"the :duration part is missing; {expected}, e.g. by_duration:PT1H"
    if not value.startswith(BY_DURATION + ":"):
        return expected
    try:
        duration_ms = parse_duration_ms(value[len(BY_DURATION) + 1:])
    except ValueError as exc:
        return f"{exc}; {expected}"
    if duration_ms < 0:
        return f"a negative duration is not allowed in by_duration; {expected}"
    return None


def duration_ms(value: str) -> float | None:
    """The duration of a valid ``by_duration:…`` value in ms; None for the named ones."""
    if not value.startswith(BY_DURATION + ":"):
        return None
    return parse_duration_ms(value[len(BY_DURATION) + 1:])


def offset_for_time(log: object, timestamp_ms: float) -> int | None:
    """``offsetsForTimes`` on one log: the first offset below the high watermark whose
    timestamp is ≥ ``timestamp_ms``, or None if there is none (``sim.broker.list_offsets``)."""
    found = offset_for_timestamp(log, max(0, math.ceil(timestamp_ms)))  # type: ignore[arg-type]
    return None if found is None else found.offset
