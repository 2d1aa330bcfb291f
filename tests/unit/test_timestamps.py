"""Timestamps: a golden line per preset, the generic layouts, year inference, zones, invalid
values, detection and fill_forward. Expected values are computed with ``datetime``, never
with the code under test."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from logpipe.errors import FormatSpecError, UsageError
from logpipe.formats import PRESETS, preset
from logpipe.timestamps import (
    LAYOUTS,
    PRESET_TIMES,
    detect_layout,
    detect_timestamps,
    fill_forward,
    layout,
    parse_timestamps,
    timestamps_from_fields,
)

UTC = dt.UTC


def ns(year: int, month: int, day: int, *clock: int, tz: dt.tzinfo = UTC, micro_ns: int = 0) -> int:
    """Nanoseconds since the epoch of ``datetime(year, month, day, *clock)`` (hour, minute,
    second, microsecond) in ``tz``, plus sub-microsecond nanoseconds."""
    hour, minute, second, micro = (*clock, 0, 0, 0, 0)[:4]
    when = dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    delta = when - dt.datetime(1970, 1, 1, tzinfo=UTC)
    return (delta // dt.timedelta(microseconds=1)) * 1000 + micro_ns


REF_2006 = ns(2006, 1, 31)  # a reference after every yearless Loghub sample

# One real line of each Loghub system (first line of its 2k sample) and its time.
GOLDEN: dict[str, tuple[str, int]] = {
    "HDFS": (
        "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block x",
        ns(2008, 11, 9, 20, 36, 15),
    ),
    "Hadoop": (
        "2015-10-18 18:01:47,978 INFO [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster:"
        " Created MRAppMaster",
        ns(2015, 10, 18, 18, 1, 47, 978000),
    ),
    "Spark": (
        "17/06/09 20:10:40 INFO executor.CoarseGrainedExecutorBackend: Registered signal",
        ns(2017, 6, 9, 20, 10, 40),
    ),
    "Zookeeper": (
        "2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:Fast"
        "LeaderElection@774] - Notification time out: 3200",
        ns(2015, 7, 29, 17, 41, 44, 747000),
    ),
    "BGL": (
        "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872"
        " R02-M1-N0-C:J12-U11 RAS KERNEL INFO instruction cache parity error corrected",
        ns(2005, 6, 3, 22, 42, 50),
    ),
    "HPC": (
        "134681 node-246 unix.hw state_change.unavailable 1077804742 1 Component State Change",
        ns(2004, 2, 26, 14, 12, 22),
    ),
    "Thunderbird": (
        "- 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond(pam_unix)[2915]:"
        " session closed for user root",
        ns(2005, 11, 9, 20, 1, 1),
    ),
    "Linux": (
        "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname=",
        ns(2005, 6, 14, 15, 16, 1),
    ),
    "HealthApp": (
        "20171223-22:32:0:95|Step_LSC|30002312|onStandStepChanged 3579",
        ns(2017, 12, 23, 22, 32, 0, 95000),
    ),
    "Apache": (
        "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2",
        ns(2005, 12, 4, 4, 47, 44),
    ),
    "Proxifier": (
        "[10.30 16:49:06] chrome.exe - proxy.cse.cuhk.edu.hk:5070 open through proxy",
        ns(2005, 10, 30, 16, 49, 6),
    ),
    "OpenSSH": (
        "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186",
        ns(2005, 12, 10, 6, 55, 46),
    ),
    "OpenStack": (
        "nova-api.log.1.2017-05-16_13:53:08 2017-05-16 00:00:00.008 25746 INFO"
        " nova.osapi_compute.wsgi.server [req-3810] 10.11.10.1 GET /v2",
        ns(2017, 5, 16, 0, 0, 0, 8000),
    ),
    "Mac": (
        "Jul  1 09:00:55 calvisitor-10-105-160-95 kernel[0]: IOThunderboltSwitch<0>(0x0)",
        ns(2005, 7, 1, 9, 0, 55),
    ),
    "Android": (
        "03-17 16:13:38.811  1702  2395 D WindowManager: printFreezingDisplayLogsopening app",
        ns(2005, 3, 17, 16, 13, 38, 811000),
    ),
    "Windows": (
        "2016-09-28 04:30:30, Info                  CBS    Loaded Servicing Stack v6.1.7601",
        ns(2016, 9, 28, 4, 30, 30),
    ),
}


def arr(*values: str | None) -> pa.Array:
    return pa.array(list(values), pa.string())


def test_every_preset_has_a_time_spec_and_a_golden_line() -> None:
    assert set(PRESET_TIMES) == set(PRESETS) == set(GOLDEN)


@pytest.mark.parametrize("system", sorted(GOLDEN))
def test_golden_line_per_preset(system: str) -> None:
    line, expected = GOLDEN[system]
    framed = preset(system).frame(arr(line))
    got = timestamps_from_fields(framed.fields, system, reference_ns=REF_2006)
    assert got.to_pylist() == [expected]
    # Detection on the raw line finds the same instant (BGL/Thunderbird: the epoch, which
    # comes first, not the local wall-clock time beside it).
    assert detect_timestamps(arr(line), reference_ns=REF_2006).to_pylist() == [expected]


def test_preset_names_are_case_insensitive_and_unknown_ones_are_usage_errors() -> None:
    line, expected = GOLDEN["HDFS"]
    fields = preset("HDFS").frame(arr(line)).fields
    assert timestamps_from_fields(fields, "hdfs").to_pylist() == [expected]
    with pytest.raises(UsageError, match="unknown log format preset"):
        timestamps_from_fields(fields, "NoSuchSystem")
    with pytest.raises(UsageError, match="no <Month> field"):
        timestamps_from_fields(fields, "Linux")


def test_format_string_and_bare_fields_choose_the_layout_from_the_fields() -> None:
    spec = "<Date> <Time> <Level> <Content>"
    lines = arr("2024-02-29 23:59:59.5 INFO a", "2024-03-01 00:00:00 WARN b", "no header")
    fields = preset_free_frame(spec, lines)
    want = [ns(2024, 2, 29, 23, 59, 59, 500000), ns(2024, 3, 1), None]
    assert timestamps_from_fields(fields, spec).to_pylist() == want
    assert timestamps_from_fields(fields, None).to_pylist() == want
    # An epoch Timestamp beside a split date is found alone (Thunderbird-like formats).
    spec2 = "<Timestamp> <Month> <Day> <Content>"
    fields2 = preset_free_frame(spec2, arr("1131566461 Nov 9 x", "1131566462 Nov 9 y"))
    assert timestamps_from_fields(fields2, spec2).to_pylist() == [
        ns(2005, 11, 9, 20, 1, 1),
        ns(2005, 11, 9, 20, 1, 2),
    ]
    # No time-like field at all: all null, no error.
    assert timestamps_from_fields({"Level": arr("INFO")}, None).to_pylist() == [None]


def preset_free_frame(spec: str, lines: pa.Array) -> dict[str, pa.Array]:
    from logpipe.formats import compile_format

    return compile_format(spec).frame(lines).fields


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02T03:04:05Z", ns(2024, 1, 2, 3, 4, 5)),
        ("2024-01-02T03:04:05.123456789+02:00", ns(2024, 1, 2, 1, 4, 5, 123456, micro_ns=789)),
        ("2024-01-02 03:04:05,1-0700", ns(2024, 1, 2, 10, 4, 5, 100000)),
        ("2024-01-02T03:04:05+0530", ns(2024, 1, 1, 21, 34, 5)),
        ("2024-01-02T03:04:05-07", ns(2024, 1, 2, 10, 4, 5)),
        ("2024-01-02T03:04:05.1234567891234", ns(2024, 1, 2, 3, 4, 5, 123456, micro_ns=789)),
        ("2024-01-02T03:04:05", ns(2024, 1, 2, 3, 4, 5)),
    ],
)
def test_iso8601_and_rfc3339(text: str, expected: int) -> None:
    got = parse_timestamps(arr(text), LAYOUTS["iso8601"]).ns.to_pylist()
    assert got == [expected]


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("clf", "10/Oct/2000:13:55:36 -0700", ns(2000, 10, 10, 20, 55, 36)),
        ("epoch_s", "1700000000", ns(2023, 11, 14, 22, 13, 20)),
        ("epoch_s", "1700000000.25", ns(2023, 11, 14, 22, 13, 20, 250000)),
        ("epoch_ms", "1700000000123", ns(2023, 11, 14, 22, 13, 20, 123000)),
        ("ctime", "Mon Jan  8 07:05:03 2024", ns(2024, 1, 8, 7, 5, 3)),
        ("bgl", "2005-06-03-15.42.50.675872", ns(2005, 6, 3, 15, 42, 50, 675872)),
        ("yymmdd", "691231 235959", ns(1969, 12, 31, 23, 59, 59)),
        ("yymmdd", "680101 000000", ns(2068, 1, 1)),
        ("healthapp", "20171223-2:5:9:7", ns(2017, 12, 23, 2, 5, 9, 7000)),
    ],
)
def test_generic_and_preset_layouts(name: str, text: str, expected: int) -> None:
    assert parse_timestamps(arr(text), LAYOUTS[name]).ns.to_pylist() == [expected]


def test_line_zone_wins_over_tz_parameter_and_tz_applies_otherwise() -> None:
    iso = LAYOUTS["iso8601"]
    lines = arr("2024-01-02 03:04:05Z", "2024-01-02 03:04:05")
    got = parse_timestamps(lines, iso, tz="+02:00").ns.to_pylist()
    assert got == [ns(2024, 1, 2, 3, 4, 5), ns(2024, 1, 2, 1, 4, 5)]
    assert parse_timestamps(lines, iso, tz="-0130").ns.to_pylist()[1] == ns(2024, 1, 2, 4, 34, 5)


def test_iana_time_zone_follows_daylight_saving() -> None:
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    lines = arr("2024-01-15 12:00:00", "2024-07-15 12:00:00", "2024-07-15 12:00:00+00:00")
    got = parse_timestamps(lines, LAYOUTS["iso8601"], tz="Europe/Berlin").ns.to_pylist()
    assert got == [
        ns(2024, 1, 15, 12, tz=berlin),
        ns(2024, 7, 15, 12, tz=berlin),
        ns(2024, 7, 15, 12),
    ]
    # Ambiguous wall-clock time (DST ends 2024-10-27 03:00 → 02:00): the earlier instant.
    fold = parse_timestamps(arr("2024-10-27 02:30:00"), LAYOUTS["iso8601"], tz="Europe/Berlin")
    assert fold.ns.to_pylist() == [ns(2024, 10, 27, 0, 30)]


def test_bad_time_zone_and_bad_layout_specs_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="unknown time zone"):
        parse_timestamps(arr("2024-01-02 03:04:05"), LAYOUTS["iso8601"], tz="Mars/Olympus")
    with pytest.raises(UsageError, match="offset out of range"):
        parse_timestamps(arr("2024-01-02 03:04:05"), LAYOUTS["iso8601"], tz="+25:00")
    for spec, problem in [
        ("%Y-%m %H:%M", "no a day"),
        ("%Y-%m-%d %H:%M %q", "unknown directive %q"),
        ("%s %H", "epoch field stands alone"),
        ("%Y-%m-%d %H:%M:%S %Y", "given twice"),
        ("%Y-%m-%d %H:%M(:%S", "unclosed optional group"),
    ]:
        with pytest.raises(FormatSpecError, match=problem):
            layout(spec)


@pytest.mark.parametrize(
    "text",
    [
        "2023-13-01 00:00:00",  # month 13
        "2023-00-10 00:00:00",  # month 0
        "2023-02-29 00:00:00",  # not a leap year
        "2100-02-29 00:00:00",  # century, not a leap year
        "2023-04-31 00:00:00",  # April has 30 days
        "2023-01-00 00:00:00",  # day 0
        "2023-01-01 24:00:00",  # hour 24
        "2023-01-01 25:00:00",
        "2023-01-01 00:60:00",
        "2023-01-01 23:59:60",  # leap second: no int64 UTC count for it
        "2023-01-01 00:00:00+24:00",  # zone offset out of range
        "2023-01-01 00:00:00+01:60",
        "9999-01-01 00:00:00",  # past int64 nanoseconds (2262)
        "1600-01-01 00:00:00",  # before int64 nanoseconds (1677)
    ],
)
def test_impossible_times_are_null_not_errors(text: str) -> None:
    parsed = parse_timestamps(arr(text), LAYOUTS["iso8601"])
    assert parsed.ns.to_pylist() == [None]
    assert parsed.matched.to_pylist() == [True]
    assert parsed.invalid_count == 1


def test_leap_days_that_exist_are_read() -> None:
    got = parse_timestamps(arr("2024-02-29 00:00:00", "2000-02-29 12:00:00"), LAYOUTS["iso8601"])
    assert got.ns.to_pylist() == [ns(2024, 2, 29), ns(2000, 2, 29, 12)]
    assert got.invalid_count == 0


def test_invalid_values_are_counted_apart_from_lines_without_a_time() -> None:
    lines = arr("2023-02-30 00:00:00", "not a time", None, "2023-02-28 00:00:00")
    parsed = parse_timestamps(lines, LAYOUTS["iso8601"])
    assert parsed.ns.to_pylist() == [None, None, None, ns(2023, 2, 28)]
    assert parsed.matched.to_pylist() == [True, False, False, True]
    assert parsed.invalid_count == 1
    assert parsed.matched_count == 2


def test_epochs_out_of_range_are_null() -> None:
    got = parse_timestamps(arr("9999999999999"), LAYOUTS["epoch_ms"]).ns.to_pylist()
    assert got == [None]


# ----------------------------------------------------------------------------- year inference


def test_year_is_the_most_recent_not_more_than_a_day_ahead_of_the_reference() -> None:
    syslog = LAYOUTS["syslog"]
    ref = ns(2024, 3, 10, 12)
    got = parse_timestamps(arr("Mar 10 11:00:00"), syslog, reference_ns=ref).ns.to_pylist()
    assert got == [ns(2024, 3, 10, 11)]
    # Within a day ahead (clock skew, zones): still this year.
    got = parse_timestamps(arr("Mar 11 11:00:00"), syslog, reference_ns=ref).ns.to_pylist()
    assert got == [ns(2024, 3, 11, 11)]
    # More than a day ahead: last year.
    got = parse_timestamps(arr("Mar 12 12:00:01"), syslog, reference_ns=ref).ns.to_pylist()
    assert got == [ns(2023, 3, 12, 12, 0, 1)]
    # A reference on New Year's Eve and a line just after midnight: next year.
    eve = ns(2023, 12, 31, 23)
    got = parse_timestamps(arr("Jan  1 00:30:00"), syslog, reference_ns=eve).ns.to_pylist()
    assert got == [ns(2024, 1, 1, 0, 30)]


def test_month_going_back_a_lot_is_a_new_year() -> None:
    lines = arr("Nov 30 10:00:00", "Dec 31 23:59:59", "Jan  1 00:00:01", "Feb  2 00:00:00")
    got = parse_timestamps(lines, LAYOUTS["syslog"], reference_ns=ns(2024, 6, 1)).ns.to_pylist()
    assert got == [
        ns(2023, 11, 30, 10),
        ns(2023, 12, 31, 23, 59, 59),
        ns(2024, 1, 1, 0, 0, 1),
        ns(2024, 2, 2),
    ]


def test_two_rollovers_and_small_steps_back_are_not_new_years() -> None:
    lines = arr("Dec  1 00:00:00", "Jan  1 00:00:00", "Dec  1 00:00:00", "Jan  1 00:00:00")
    got = parse_timestamps(lines, LAYOUTS["syslog"], reference_ns=ns(2024, 6, 1)).ns.to_pylist()
    assert got == [ns(2022, 12, 1), ns(2023, 1, 1), ns(2023, 12, 1), ns(2024, 1, 1)]
    # Jul → Jun: out of order, same year.
    lines = arr("Jul  1 00:00:00", "Jun 30 00:00:00")
    got = parse_timestamps(lines, LAYOUTS["syslog"], reference_ns=ns(2024, 8, 1)).ns.to_pylist()
    assert got == [ns(2024, 7, 1), ns(2024, 6, 30)]


def test_feb_29_without_year_is_null_when_the_inferred_year_is_not_leap() -> None:
    logcat = LAYOUTS["logcat"]
    leap = parse_timestamps(arr("02-29 10:00:00.000"), logcat, reference_ns=ns(2024, 3, 1))
    assert leap.ns.to_pylist() == [ns(2024, 2, 29, 10)]
    plain = parse_timestamps(arr("02-29 10:00:00.000"), logcat, reference_ns=ns(2023, 3, 1))
    assert plain.ns.to_pylist() == [None]


def test_default_reference_is_now() -> None:
    now = dt.datetime.now(tz=UTC)
    text = now.strftime("%b %d %H:%M:%S")
    got = parse_timestamps(arr(text), LAYOUTS["syslog"]).ns.to_pylist()[0]
    assert got is not None
    assert abs(got - ns(now.year, now.month, now.day, now.hour, now.minute, now.second)) == 0


# ----------------------------------------------------------------------------- detection


def test_detection_skips_continuation_lines_and_picks_the_majority_layout() -> None:
    lines = arr(
        "2024-05-01 10:00:00,001 ERROR [main] app.Main: boom",
        "java.lang.IllegalStateException: at 1700000000",
        "\tat app.Main.run(Main.java:10)",
        "2024-05-01 10:00:01,500 INFO [main] app.Main: ok",
        "",
        None,
    )
    assert detect_layout(lines) == LAYOUTS["iso8601"]
    got = detect_timestamps(lines).to_pylist()
    first, second = ns(2024, 5, 1, 10, 0, 0, 1000), ns(2024, 5, 1, 10, 0, 1, 500000)
    assert got == [first, None, None, second, None, None]


def test_detection_finds_timestamps_after_a_short_prefix_only() -> None:
    lines = arr("<34>Oct 11 22:14:15 mymachine su: 'su root' failed", "x" * 80 + " Oct 11 22:14:15")
    got = detect_timestamps(lines, reference_ns=ns(2024, 12, 1), min_fraction=0.5).to_pylist()
    assert got == [ns(2024, 10, 11, 22, 14, 15), None]


def test_detection_needs_a_word_boundary_and_exact_digit_counts() -> None:
    # A 13-digit number is milliseconds, not 10-digit seconds followed by junk; a
    # timestamp glued to letters is not taken.
    assert detect_layout(arr("1700000000123 x", "1700000000124 y")) == LAYOUTS["epoch_ms"]
    got = detect_timestamps(arr("id1700000000 x", "1700000000 y"), min_fraction=0.5)
    assert got.to_pylist() == [None, ns(2023, 11, 14, 22, 13, 20)]


def test_detection_without_a_majority_gives_nulls() -> None:
    lines = arr("hello", "world", "1700000000 once")
    assert detect_layout(lines) is None
    assert detect_timestamps(lines).to_pylist() == [None, None, None]
    assert detect_timestamps(arr()).to_pylist() == []


def test_detection_reads_binary_lines_with_invalid_utf8() -> None:
    lines = pa.array([b"2024-01-02T03:04:05Z \xff\xfe bytes", b"\xff garbage"], pa.binary())
    got = detect_timestamps(lines, min_fraction=0.5).to_pylist()
    assert got == [ns(2024, 1, 2, 3, 4, 5), None]


def test_chunked_input_is_accepted() -> None:
    chunked = pa.chunked_array([arr("2024-01-02 03:04:05"), arr("2024-01-02 03:04:06")])
    assert detect_timestamps(chunked).to_pylist() == [
        ns(2024, 1, 2, 3, 4, 5),
        ns(2024, 1, 2, 3, 4, 6),
    ]


# ----------------------------------------------------------------------------- fill_forward


def test_fill_forward() -> None:
    ts = pa.array([None, None, 5, None, 7, None, None], pa.int64())
    assert fill_forward(ts, default_ns=1).to_pylist() == [1, 1, 5, 5, 7, 7, 7]
    assert fill_forward(pa.array([3, 4], pa.int64()), 0).to_pylist() == [3, 4]
    assert fill_forward(pa.nulls(2, pa.int64()), 9).to_pylist() == [9, 9]
    stamps = pa.array([None, 10], pa.timestamp("ns", tz="UTC"))
    assert fill_forward(stamps, 2).to_pylist() == [2, 10]
    assert fill_forward(pa.array([], pa.int64()), 0).to_pylist() == []


# ----------------------------------------------------------------------------- real data


@pytest.mark.data
def test_every_loghub_sample_is_timestamped(shared_data: Path) -> None:
    """≥ 99% of the lines of every Loghub 2k sample get a time, with its preset and by
    detection, and both agree; times are plausible (1990-2030)."""
    files = sorted(shared_data.glob("loghub-2k*/*/*_2k.log"))
    assert len(files) == len(PRESETS)
    low, high = ns(1990, 1, 1), ns(2030, 1, 1)
    for path in files:
        system = path.name.removesuffix("_2k.log")
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
        lines = pa.array(text, pa.string())
        framed = preset(system).frame(lines)
        got = timestamps_from_fields(framed.fields, system, reference_ns=REF_2006)
        share = 1 - got.null_count / len(got)
        assert share >= 0.99, (system, share)
        values = [v for v in got.to_pylist() if v is not None]
        assert low <= min(values) and max(values) <= high, system
        detected = detect_timestamps(lines, reference_ns=REF_2006)
        assert detected.equals(got), system
