"""Loki's query parameters: time formats, defaults, steps, limits, directions."""

from __future__ import annotations

import pytest

from logpipe.server.params import (
    DEFAULT_SINCE_NS,
    ParameterError,
    Params,
    default_step_ns,
    parse_bounds,
    parse_direction,
    parse_instant,
    parse_limit,
    parse_range,
    parse_step,
    parse_time,
)

S = 1_000_000_000
NOW = 1_700_000_000 * S


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1700000000", 1_700_000_000 * S),  # <= 10 digits: seconds
        ("1700000000000000000", 1_700_000_000 * S),  # more: nanoseconds
        ("1700000000123456789", 1_700_000_000_123_456_789),
        ("1700000000.5", 1_700_000_000 * S + S // 2),  # float seconds
        ("1700000000.1234567", 1_700_000_000 * S + 123_000_000),  # rounded to ms
        ("0", 0),
        ("2023-11-14T22:13:20Z", 1_700_000_000 * S),
        ("2023-11-14T22:13:20.25Z", 1_700_000_000 * S + S // 4),
        ("2023-11-15T00:13:20+02:00", 1_700_000_000 * S),
        ("2023-11-14T22:13:20.000000001Z", 1_700_000_000 * S + 1),
    ],
)
def test_times_parse_as_loki_parses_them(text: str, expected: int) -> None:
    assert parse_time(text, 0, "start") == expected


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "2023-11-14 22:13:20",
        "2023-13-01T00:00:00Z",
        "2023-02-30T00:00:00Z",
        "1.2.3",
        "nan.",
        "99999999999999999999999",
        "",
        " ",
    ],
)
def test_bad_times_name_the_parameter(text: str) -> None:
    if not text.strip():
        assert parse_time(None, 7, "end") == 7
        return
    with pytest.raises(ParameterError, match='"end"'):
        parse_time(text, 0, "end")


def test_absent_time_takes_the_default() -> None:
    assert parse_time(None, 42, "time") == 42


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15s", 15 * S),
        ("60000ms", 60 * S),
        ("1m30s", 90 * S),
        ("15", 15 * S),
        ("0.5", S // 2),
        ("1h", 3600 * S),
    ],
)
def test_steps_are_seconds_or_durations(text: str, expected: int) -> None:
    assert parse_step(text) == expected


@pytest.mark.parametrize("text", ["fast", "15x", "1e400", "inf"])
def test_bad_steps_are_refused(text: str) -> None:
    with pytest.raises(ParameterError, match='"step"'):
        parse_step(text)


def test_default_step_is_range_over_250_at_least_one_second() -> None:
    assert default_step_ns(0, 3600 * S) == 14 * S
    assert default_step_ns(0, 60 * S) == S
    assert default_step_ns(0, 0) == S


def test_bounds_default_to_the_last_hour_and_honour_since() -> None:
    assert parse_bounds(Params({}), NOW) == (NOW - DEFAULT_SINCE_NS, NOW)
    assert parse_bounds(Params({"since": ["5m"]}), NOW) == (NOW - 300 * S, NOW)
    end = NOW - 3600 * S
    assert parse_bounds(Params({"end": [str(end)]}), NOW) == (end - DEFAULT_SINCE_NS, end)
    # an end in the future: start is still relative to now (Loki's endOrNow)
    future = NOW + 7200 * S
    assert parse_bounds(Params({"end": [str(future)]}), NOW) == (NOW - DEFAULT_SINCE_NS, future)
    with pytest.raises(ParameterError, match='"since"'):
        parse_bounds(Params({"since": ["forever"]}), NOW)


def test_limit_and_direction() -> None:
    assert parse_limit(None) == 100
    assert parse_limit("1000") == 1000
    for bad in ("0", "-5", "ten", "1.5"):
        with pytest.raises(ParameterError, match='"limit"'):
            parse_limit(bad)
    assert parse_direction(None) == "backward"
    assert parse_direction("FORWARD") == "forward"
    with pytest.raises(ParameterError, match='"direction"'):
        parse_direction("sideways")


def test_range_params_defaults_and_checks() -> None:
    p = parse_range(Params({"query": ['{app="a"}']}), NOW)
    assert (p.start_ns, p.end_ns, p.step_ns, p.limit, p.direction) == (
        NOW - 3600 * S,
        NOW,
        14 * S,
        100,
        "backward",
    )
    with pytest.raises(ParameterError, match='"query"'):
        parse_range(Params({}), NOW)
    with pytest.raises(ParameterError, match="end timestamp must not be before start"):
        parse_range(Params({"query": ["x"], "start": ["20"], "end": ["10"]}), NOW)
    with pytest.raises(ParameterError, match="zero or negative"):
        parse_range(Params({"query": ["x"], "step": ["0"]}), NOW)
    p = parse_range(Params({"query": ["x"], "interval": ["30s"], "step": ["60000ms"]}), NOW)
    assert p.interval_ns == 30 * S and p.step_ns == 60 * S


def test_instant_params_default_time_is_now_and_first_value_wins() -> None:
    p = parse_instant(Params({"query": ["a", "b"], "time": [""]}), NOW)
    assert (p.query, p.time_ns) == ("a", NOW)
