"""Datetimes to protobuf Timestamps, fast: a snapshot converts two million of them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from google.protobuf.timestamp_pb2 import Timestamp

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_SECOND = timedelta(seconds=1)


def timestamp(value: datetime) -> Timestamp:
    """What `Timestamp.FromDatetime` gives (naive counts as UTC), at a third of its cost."""
    epoch = _NAIVE_EPOCH if value.tzinfo is None else _EPOCH
    return Timestamp(seconds=(value - epoch) // _SECOND, nanos=value.microsecond * 1000)


def set_timestamp(field: Timestamp, value: datetime) -> None:
    """`timestamp` written into a message's own field (marks it present even at the epoch)."""
    epoch = _NAIVE_EPOCH if value.tzinfo is None else _EPOCH
    field.seconds = (value - epoch) // _SECOND
    field.nanos = value.microsecond * 1000
