"""The one time module: stored UTC texts, their precision and their order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from bot.domain.clock import (
    local_minutes,
    now_text,
    parse_utc,
    parse_utc_or_none,
    utc_now,
    utc_text,
    utc_text_ms,
)

KL = ZoneInfo("Asia/Kuala_Lumpur")


def test_utc_text_is_utc_with_seconds() -> None:
    moment = datetime(2026, 4, 13, 9, 0, 5, 999_999, tzinfo=KL)
    assert utc_text(moment) == "2026-04-13T01:00:05+00:00"
    assert utc_text_ms(moment) == "2026-04-13T01:00:05.999+00:00"


def test_now_is_aware_utc() -> None:
    now = utc_now()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert parse_utc(now_text()).tzinfo is not None


def test_parse_round_trip_and_empty() -> None:
    moment = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert parse_utc(utc_text(moment)) == moment
    assert parse_utc_or_none(None) is None and parse_utc_or_none("") is None


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                    timezones=st.just(KL)),
       st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                    timezones=st.just(UTC)))
def test_text_order_is_time_order(a: datetime, b: datetime) -> None:
    a, b = a.replace(microsecond=0), b.replace(microsecond=0)
    assert (utc_text(a) < utc_text(b)) == (a < b)
    assert (utc_text_ms(a) < utc_text_ms(b)) == (a < b)


def test_local_minutes() -> None:
    moment = datetime(2026, 12, 14, 1, 0, 30, tzinfo=UTC)
    assert local_minutes(moment, KL) == "2026-12-14T09:00+08:00"
