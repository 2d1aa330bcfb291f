"""Header framing: Loghub format strings, presets, structured framers and detection.

Every example line below was written for these tests (plausible, not taken from a corpus);
the ``data``-marked tests at the end check the same code against Loghub's own files.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pyarrow as pa
import pytest

from logpipe.errors import FormatSpecError, UsageError
from logpipe.formats import (
    DETECTION_SAMPLE_LINES,
    PRESETS,
    Framed,
    Framer,
    JsonFramer,
    LogfmtFramer,
    LogFormat,
    PlainFramer,
    compile_format,
    detect_framer,
    preset,
    resolve_framer,
)


def frame_one(framer: Framer, line: str) -> tuple[dict[str, str | None], str | None, bool]:
    """Frame one line and return (fields, content, matched) as Python values."""
    framed = framer.frame(pa.array([line], pa.string()))
    fields = {name: column[0].as_py() for name, column in framed.fields.items()}
    return fields, framed.content[0].as_py(), framed.matched[0].as_py()


def as_rows(framed: Framed) -> list[tuple[dict[str, str | None], str | None, bool]]:
    columns = {name: column.to_pylist() for name, column in framed.fields.items()}
    contents = framed.content.to_pylist()
    return [
        ({name: values[i] for name, values in columns.items()}, content, matched)
        for i, (content, matched) in enumerate(
            zip(contents, framed.matched.to_pylist(), strict=True)
        )
    ]


# --------------------------------------------------------------------------------------
# compile_format
# --------------------------------------------------------------------------------------


def test_compile_builds_anchored_lazy_regex_with_content_last() -> None:
    fmt = compile_format("<Date> <Time> <Level> <Component>: <Content>")
    assert fmt.field_names == ("Date", "Time", "Level", "Component")
    assert fmt.name == fmt.spec == "<Date> <Time> <Level> <Component>: <Content>"
    assert fmt.regex == (
        r"^(?:(?P<Date>.*?)\s+(?P<Time>.*?)\s+(?P<Level>.*?)\s+(?P<Component>.*?):\s+"
        r"(?P<Content>.*))$"
    )
    # The same regex in Python re gives the same split as RE2.
    match = re.match(fmt.regex, "d t INFO comp: hello: world")
    assert match is not None
    assert match.group("Component") == "comp"
    assert match.group("Content") == "hello: world"


def test_runs_of_spaces_match_any_whitespace() -> None:
    fmt = compile_format("<A>  <B> <Content>")
    fields, content, matched = frame_one(fmt, "x \t  y\tbody  text")
    assert matched
    assert fields == {"A": "x", "B": "y"}
    assert content == "body  text"


def test_capturing_groups_in_literal_text_become_optional_fields() -> None:
    fmt = compile_format(r"<Component>(\[<PID>\])?: <Content>")
    assert "(?:" in fmt.regex
    assert frame_one(fmt, "cron[12]: ran job") == (
        {"Component": "cron", "PID": "12"},
        "ran job",
        True,
    )
    # A field in an optional group that did not take part is the empty string, as in
    # Loghub's CSV files, while an unmatched line has null fields.
    assert frame_one(fmt, "kernel: eth0 up") == (
        {"Component": "kernel", "PID": ""},
        "eth0 up",
        True,
    )


def test_fields_are_lazy_and_content_takes_the_rest() -> None:
    fmt = compile_format("<A>:<B>:<Content>")
    assert frame_one(fmt, "1:2:3:4") == ({"A": "1", "B": "2"}, "3:4", True)


def test_field_names_that_are_not_group_names_are_mapped() -> None:
    fmt = compile_format("<Log Level> <Zeit-ä> <_x> <Content>")
    assert fmt.field_names == ("Log Level", "Zeit-ä", "_x")
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", group) for group in fmt.group_names)
    assert len(set(fmt.group_names)) == 3
    assert frame_one(fmt, "WARN 12:00 y message here") == (
        {"Log Level": "WARN", "Zeit-ä": "12:00", "_x": "y"},
        "message here",
        True,
    )


def test_escaped_and_bracketed_literals() -> None:
    fmt = compile_format(r"<Time>\|<Component>\|<Content>")
    assert frame_one(fmt, "t1|comp|a|b") == ({"Time": "t1", "Component": "comp"}, "a|b", True)
    fmt = compile_format(r"<A>[ ]<Content>")  # a space in a class stays one literal space
    assert frame_one(fmt, "a b") == ({"A": "a"}, "b", True)
    assert frame_one(fmt, "a  b") == ({"A": "a"}, " b", True)


def test_top_level_alternation_cannot_escape_the_anchors() -> None:
    fmt = compile_format("<A> (x|y) <Content>")
    assert frame_one(fmt, "1 y rest") == ({"A": "1"}, "rest", True)
    assert frame_one(fmt, "1 z rest")[2] is False


def test_compile_is_cached() -> None:
    assert compile_format("<X> <Content>") is compile_format("<X> <Content>")


def test_log_format_is_a_framer() -> None:
    framer: Framer = compile_format("<Content>")
    assert framer.field_names == ()
    assert frame_one(framer, "  padded body  ") == ({}, "padded body", True)


# --------------------------------------------------------------------------------------
# frame(): unmatched lines, CRLF, nulls, array kinds
# --------------------------------------------------------------------------------------

SPARK_LIKE = "<Date> <Time> <Level> <Component>: <Content>"


def test_unmatched_lines_are_kept_whole_with_null_fields() -> None:
    fmt = compile_format(SPARK_LIKE)
    framed = fmt.frame(
        pa.array(
            [
                "25/01/02 09:30:15 INFO ui.Server: started",
                "\tat org.example.Main.run(Main.java:12)",
                "no colon in this line at all",
            ]
        )
    )
    rows = as_rows(framed)
    assert rows[0] == (
        {"Date": "25/01/02", "Time": "09:30:15", "Level": "INFO", "Component": "ui.Server"},
        "started",
        True,
    )
    # Unmatched: the whole line (not stripped: nothing is lost) and null fields.
    assert rows[1] == (
        dict.fromkeys(fmt.field_names),
        "\tat org.example.Main.run(Main.java:12)",
        False,
    )
    assert rows[2] == (dict.fromkeys(fmt.field_names), "no colon in this line at all", False)


def test_crlf_lines_match_and_lose_the_carriage_return() -> None:
    fmt = compile_format(SPARK_LIKE)
    lines = ["25/01/02 09:30:15 WARN db.Pool: slow\r", "garbage line\r", "\r"]
    rows = as_rows(fmt.frame(pa.array(lines)))
    assert rows[0] == (
        {"Date": "25/01/02", "Time": "09:30:15", "Level": "WARN", "Component": "db.Pool"},
        "slow",
        True,
    )
    assert rows[1][1:] == ("garbage line", False)
    assert rows[2][1:] == ("", False)


def test_surrounding_whitespace_is_stripped_before_matching_as_loghub_does() -> None:
    fmt = compile_format(SPARK_LIKE)
    fields, content, matched = frame_one(fmt, "  25/01/02 09:30:15 INFO a.B: text   ")
    assert matched
    assert fields["Date"] == "25/01/02"
    assert content == "text"


def test_null_lines_do_not_crash() -> None:
    fmt = compile_format(SPARK_LIKE)
    framed = fmt.frame(pa.array([None, "25/01/02 09:30:15 INFO a.B: x", None], pa.string()))
    assert framed.matched.to_pylist() == [False, True, False]
    assert framed.content.to_pylist() == [None, "x", None]
    assert framed.fields["Level"].to_pylist() == [None, "INFO", None]
    all_null = fmt.frame(pa.array([None, None]))
    assert all_null.matched.to_pylist() == [False, False]


def test_empty_chunked_and_large_string_inputs() -> None:
    fmt = compile_format(SPARK_LIKE)
    empty = fmt.frame(pa.array([], pa.string()))
    assert len(empty.content) == len(empty.matched) == 0
    assert set(empty.fields) == set(fmt.field_names)
    chunked = pa.chunked_array([["d t L c: one"], ["d t L c: two", "bad"]])
    framed = fmt.frame(chunked)
    assert framed.content.to_pylist() == ["one", "two", "bad"]
    large = fmt.frame(pa.array(["d t L c: big"], pa.large_string()))
    assert large.content.to_pylist() == ["big"]


def test_binary_input_is_refused() -> None:
    with pytest.raises(TypeError, match="decode"):
        compile_format(SPARK_LIKE).frame(pa.array([b"raw"], pa.binary()))


def test_all_output_arrays_have_the_input_length() -> None:
    lines = pa.array(["d t L c: x", "nope", None, "d t L c:   y"])
    framed = compile_format(SPARK_LIKE).frame(lines)
    assert len(framed.content) == len(framed.matched) == 4
    assert all(len(column) == 4 for column in framed.fields.values())
    assert framed.content.type == pa.string()
    assert framed.matched.type == pa.bool_()
    assert framed.matched.null_count == 0


# --------------------------------------------------------------------------------------
# Invalid format strings
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "column", "words"),
    [
        ("<Date> <Time> <Date> <Content>", 15, "duplicate field <Date>"),
        ("<Content> <Level> <Content>", 19, "duplicate field <Content>"),
        (r"<Date> (<Level> <Content>", 8, "invalid regular expression"),
        (r"<Date>) <Content>", 7, "invalid regular expression"),
        (r"<Date> [ <Content>", 8, "invalid regular expression"),
        (r"<A> (?=x)<Content>", 5, "not supported by RE2"),  # lookahead: Python only
        (r"<A> \1 <Content>", 5, "not supported by RE2"),  # backreference: Python only
        (r"<A> \z<Content>", 5, "invalid regular expression"),  # RE2 only
    ],
)
def test_invalid_specs_name_the_spec_and_the_column(spec: str, column: int, words: str) -> None:
    with pytest.raises(FormatSpecError) as excinfo:
        compile_format(spec)
    message = str(excinfo.value)
    assert f"log format '{spec}'" in message
    assert words in message
    assert re.search(rf"at column {column}\b", message)
    # The caret line points at the same column.
    caret_line = message.splitlines()[-1]
    assert caret_line.index("^") - 2 == column - 1


def test_missing_content_is_an_error() -> None:
    with pytest.raises(FormatSpecError, match=r"log format '<Date> <Level>': no <Content> field"):
        compile_format("<Date> <Level>")
    with pytest.raises(FormatSpecError, match="no <Content>"):
        compile_format("")


def test_format_errors_are_usage_errors() -> None:
    with pytest.raises(UsageError) as excinfo:
        compile_format("<A> <A> <Content>")
    assert excinfo.value.exit_code == 2


# --------------------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------------------

# One or two hand-written lines per Loghub system: (system, line, fields, content).
PRESET_LINES: list[tuple[str, str, dict[str, str], str]] = [
    (
        "HDFS",
        "250102 093015 42 WARN dfs.DataNode$BlockScanner: Verification failed for blk_7001",
        {
            "Date": "250102",
            "Time": "093015",
            "Pid": "42",
            "Level": "WARN",
            "Component": "dfs.DataNode$BlockScanner",
        },
        "Verification failed for blk_7001",
    ),
    (
        "Hadoop",
        "2025-01-02 09:30:15,042 WARN [IPC Server handler 3] org.example.mapred.Tracker: "
        "Spill 2 finished",
        {
            "Date": "2025-01-02",
            "Time": "09:30:15,042",
            "Level": "WARN",
            "Process": "IPC Server handler 3",
            "Component": "org.example.mapred.Tracker",
        },
        "Spill 2 finished",
    ),
    (
        "Spark",
        "25/01/02 09:30:15 ERROR storage.BlockStore: Could not put block rdd_4_1",
        {
            "Date": "25/01/02",
            "Time": "09:30:15",
            "Level": "ERROR",
            "Component": "storage.BlockStore",
        },
        "Could not put block rdd_4_1",
    ),
    (
        "Zookeeper",
        "2025-01-02 09:30:15,042 - WARN  [SyncThread:3:FileTxnLog@201] - fsync took 1500ms",
        {
            "Date": "2025-01-02",
            "Time": "09:30:15,042",
            "Level": "WARN",
            "Node": "SyncThread",
            "Component": "3:FileTxnLog",
            "Id": "201",
        },
        "fsync took 1500ms",
    ),
    (
        "BGL",
        "- 1735810215 2025.01.02 R10-M1-N3-C:J07-U11 2025-01-02-09.30.15.042000 "
        "R10-M1-N3-C:J07-U11 RAS KERNEL WARNING correctable memory error on rank 2",
        {
            "Label": "-",
            "Timestamp": "1735810215",
            "Date": "2025.01.02",
            "Node": "R10-M1-N3-C:J07-U11",
            "Time": "2025-01-02-09.30.15.042000",
            "NodeRepeat": "R10-M1-N3-C:J07-U11",
            "Type": "RAS",
            "Component": "KERNEL",
            "Level": "WARNING",
        },
        "correctable memory error on rank 2",
    ),
    (
        "HPC",
        "4242 node-17 node.ecc memory.corrected 1735810215 1 ECC error corrected on DIMM 3",
        {
            "LogId": "4242",
            "Node": "node-17",
            "Component": "node.ecc",
            "State": "memory.corrected",
            "Time": "1735810215",
            "Flag": "1",
        },
        "ECC error corrected on DIMM 3",
    ),
    (
        "Thunderbird",
        "- 1735810215 2025.01.02 tn42 Jan 2 09:30:15 tn42/tn42 sshd[5120]: Connection closed",
        {
            "Label": "-",
            "Timestamp": "1735810215",
            "Date": "2025.01.02",
            "User": "tn42",
            "Month": "Jan",
            "Day": "2",
            "Time": "09:30:15",
            "Location": "tn42/tn42",
            "Component": "sshd",
            "PID": "5120",
        },
        "Connection closed",
    ),
    (
        "Thunderbird",
        "ALERT 1735810216 2025.01.02 tn43 Jan 2 09:30:16 tn43/tn43 kernel: eth0: link down",
        {
            "Label": "ALERT",
            "Timestamp": "1735810216",
            "Date": "2025.01.02",
            "User": "tn43",
            "Month": "Jan",
            "Day": "2",
            "Time": "09:30:16",
            "Location": "tn43/tn43",
            "Component": "kernel",
            "PID": "",
        },
        "eth0: link down",
    ),
    (
        "Linux",
        "Jan  2 09:30:15 gateway ftpd[881]: connection from 192.0.2.4 () at Thu Jan  2 2025",
        {
            "Month": "Jan",
            "Date": "2",
            "Time": "09:30:15",
            "Level": "gateway",
            "Component": "ftpd",
            "PID": "881",
        },
        "connection from 192.0.2.4 () at Thu Jan  2 2025",
    ),
    (
        "Linux",
        "Jan  2 09:30:16 gateway su(pam_unix): session opened for user ops",
        {
            "Month": "Jan",
            "Date": "2",
            "Time": "09:30:16",
            "Level": "gateway",
            "Component": "su(pam_unix)",
            "PID": "",
        },
        "session opened for user ops",
    ),
    (
        "HealthApp",
        "20250102-9:30:15:42|Step_Counter|1907|flush steps=318",
        {"Time": "20250102-9:30:15:42", "Component": "Step_Counter", "Pid": "1907"},
        "flush steps=318",
    ),
    (
        "Apache",
        "[Thu Jan 02 09:30:15 2025] [warn] jk2_init() child 4242 could not attach",
        {"Time": "Thu Jan 02 09:30:15 2025", "Level": "warn"},
        "jk2_init() child 4242 could not attach",
    ),
    (
        "Proxifier",
        "[01.02 09:30:15] firefox.exe - example.org:443 open through proxy gw.example.net:8080",
        {"Time": "01.02 09:30:15", "Program": "firefox.exe"},
        "example.org:443 open through proxy gw.example.net:8080",
    ),
    (
        "OpenSSH",
        "Jan  2 09:30:15 bastion sshd[3141]: Failed password for admin from 203.0.113.7",
        {"Date": "Jan", "Day": "2", "Time": "09:30:15", "Component": "bastion", "Pid": "3141"},
        "Failed password for admin from 203.0.113.7",
    ),
    (
        "OpenStack",
        "nova-compute.log.2025-01-02 2025-01-02 09:30:15.042 3141 INFO nova.compute.manager "
        "[req-1234 abc def - - -] [instance: 42] Took 1.5 seconds to spawn",
        {
            "Logrecord": "nova-compute.log.2025-01-02",
            "Date": "2025-01-02",
            "Time": "09:30:15.042",
            "Pid": "3141",
            "Level": "INFO",
            "Component": "nova.compute.manager",
            "ADDR": "req-1234 abc def - - -",
        },
        "[instance: 42] Took 1.5 seconds to spawn",
    ),
    (
        "Mac",
        "Jan  2 09:30:15 laptop-7 backupd[512]: Backup completed successfully.",
        {
            "Month": "Jan",
            "Date": "2",
            "Time": "09:30:15",
            "User": "laptop-7",
            "Component": "backupd",
            "PID": "512",
            "Address": "",
        },
        "Backup completed successfully.",
    ),
    (
        "Mac",
        "Jan  2 09:30:16 laptop-7 WindowServer[210] (0x7fa1c0): Display is now asleep",
        {
            "Month": "Jan",
            "Date": "2",
            "Time": "09:30:16",
            "User": "laptop-7",
            "Component": "WindowServer",
            "PID": "210",
            "Address": "0x7fa1c0",
        },
        "Display is now asleep",
    ),
    (
        "Android",
        "01-02 09:30:15.042  1000  1234 I ActivityManager: Start proc 4242:com.example/u0a12",
        {
            "Date": "01-02",
            "Time": "09:30:15.042",
            "Pid": "1000",
            "Tid": "1234",
            "Level": "I",
            "Component": "ActivityManager",
        },
        "Start proc 4242:com.example/u0a12",
    ),
    (
        "Windows",
        "2025-01-02 09:30:15, Info                  CBS    Session: 3054_1 initialized by client",
        {"Date": "2025-01-02", "Time": "09:30:15", "Level": "Info", "Component": "CBS"},
        "Session: 3054_1 initialized by client",
    ),
]


def test_there_are_sixteen_presets_and_every_one_has_a_hand_written_line() -> None:
    assert len(PRESETS) == 16
    assert {system for system, *_ in PRESET_LINES} == set(PRESETS)


@pytest.mark.parametrize(
    ("system", "line", "fields", "content"),
    PRESET_LINES,
    ids=[f"{system}-{i}" for i, (system, *_) in enumerate(PRESET_LINES)],
)
def test_preset_frames_a_hand_written_line(
    system: str, line: str, fields: dict[str, str], content: str
) -> None:
    fmt = preset(system)
    assert fmt.field_names == tuple(fields)
    assert frame_one(fmt, line) == (fields, content, True)
    # CRLF input frames the same way.
    assert frame_one(fmt, line + "\r") == (fields, content, True)


def test_preset_names_are_case_insensitive() -> None:
    assert preset("hdfs") is preset("HDFS")
    assert preset("openssh").spec == PRESETS["OpenSSH"]
    assert preset("ZOOKEEPER").field_names[0] == "Date"


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(UsageError) as excinfo:
        preset("nginx")
    message = str(excinfo.value)
    assert "'nginx'" in message
    for name in PRESETS:
        assert name in message
    assert not isinstance(excinfo.value, FormatSpecError)


# --------------------------------------------------------------------------------------
# resolve_framer
# --------------------------------------------------------------------------------------

ISO_SAMPLE = [
    "2025-01-02T09:30:15.042Z INFO http: listening on :8080",
    "2025-01-02T09:30:16.100Z WARN db: slow query took 1200ms",
    "2025-01-02T09:30:17Z error http: handler panicked: nil map",
]


def test_resolve_prefers_format_then_preset_then_detection() -> None:
    fmt = resolve_framer("<A> <Content>", None, ISO_SAMPLE)
    assert isinstance(fmt, LogFormat)
    assert fmt.spec == "<A> <Content>"
    assert resolve_framer(None, "spark", ISO_SAMPLE) is preset("Spark")
    assert resolve_framer(None, None, ISO_SAMPLE).name == "iso-level-logger"


def test_resolve_with_both_format_and_preset_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not both"):
        resolve_framer("<A> <Content>", "HDFS", [])


def test_resolve_reports_bad_explicit_format() -> None:
    with pytest.raises(FormatSpecError):
        resolve_framer("<A> <A> <Content>", None, ISO_SAMPLE)
    with pytest.raises(UsageError):
        resolve_framer(None, "nope", ISO_SAMPLE)


# --------------------------------------------------------------------------------------
# Structured framers
# --------------------------------------------------------------------------------------


def test_json_framer_content_and_stringified_fields() -> None:
    lines = [
        '{"ts": "2025-01-02T09:30:15Z", "level": "info", "msg": "user login", "uid": 7,'
        ' "ratio": 1.10, "ok": true, "ctx": {"ip": "192.0.2.1", "ports": [80, 4e2]}}',
        '{"ts": "2025-01-02T09:30:16Z", "message": "cache miss", "msg": "short", "gone": null}',
        '{"level": "debug", "status": 204}',
        '["not", "an", "object"]',
        "{broken json",
        '{"msg": "with crlf"}\r',
    ]
    framer = JsonFramer.from_sample(lines)
    assert framer.name == "json"
    assert framer.field_names == (
        "ts",
        "level",
        "uid",
        "ratio",
        "ok",
        "ctx",
        "msg",
        "gone",
        "status",
    )
    rows = as_rows(framer.frame(pa.array(lines)))
    first_fields, first_content, first_matched = rows[0]
    assert first_matched
    assert first_content == "user login"
    assert first_fields["uid"] == "7"
    assert first_fields["ratio"] == "1.10"  # digits kept as written
    assert first_fields["ok"] == "true"
    assert first_fields["ctx"] == '{"ip":"192.0.2.1","ports":[80,4e2]}'
    assert first_fields["msg"] is None
    # "message" outranks "msg"; the losing key is an ordinary field.
    assert rows[1][1] == "cache miss"
    assert rows[1][0]["msg"] == "short"
    assert rows[1][0]["gone"] is None
    # No content key: the whole line is the content, the keys still become fields.
    assert rows[2] == (
        {**dict.fromkeys(framer.field_names), "level": "debug", "status": "204"},
        '{"level": "debug", "status": 204}',
        True,
    )
    assert rows[3] == (dict.fromkeys(framer.field_names), '["not", "an", "object"]', False)
    assert rows[4] == (dict.fromkeys(framer.field_names), "{broken json", False)
    assert rows[5][1:] == ("with crlf", True)


def test_json_framer_ignores_keys_not_in_its_fields_and_handles_nulls() -> None:
    framer = JsonFramer(field_names=("level",))
    framed = framer.frame(pa.array(['{"level": "x", "new": 1, "msg": "m"}', None]))
    assert set(framed.fields) == {"level"}
    assert as_rows(framed) == [({"level": "x"}, "m", True), ({"level": None}, None, False)]


def test_logfmt_framer_quotes_escapes_and_failures() -> None:
    lines = [
        'ts=2025-01-02T09:30:15Z level=info msg="user \\"bob\\" logged in\\n" path=/login',
        "level=warn message=disk_low free=10% expr=a=b empty=",
        'level=error msg="tab\\there" u="\\u00e9t\\u00e9" odd="back\\qslash"',
        "this is not logfmt",
        'key="unterminated',
        'a="x"y',
    ]
    framer = LogfmtFramer.from_sample(lines)
    assert framer.name == "logfmt"
    assert framer.field_names == ("ts", "level", "path", "free", "expr", "empty", "u", "odd")
    rows = as_rows(framer.frame(pa.array(lines)))
    assert rows[0][1:] == ('user "bob" logged in\n', True)
    assert rows[0][0]["path"] == "/login"
    assert rows[1][1] == "disk_low"
    assert rows[1][0]["expr"] == "a=b"
    assert rows[1][0]["empty"] == ""
    assert rows[2][1] == "tab\there"
    assert rows[2][0]["u"] == "été"
    assert rows[2][0]["odd"] == "back\\qslash"  # unknown escape kept visibly
    for row, line in zip(rows[3:], lines[3:], strict=True):
        assert row == (dict.fromkeys(framer.field_names), line, False)


def test_plain_framer_keeps_the_line() -> None:
    framer = PlainFramer()
    framed = framer.frame(pa.array(["  a b  ", "x\r", None]))
    assert framer.field_names == ()
    assert framed.fields == {}
    assert framed.content.to_pylist() == ["  a b  ", "x", None]
    assert framed.matched.to_pylist() == [True, True, False]
    assert PlainFramer() == PlainFramer()


# --------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------

DETECTION_CASES: list[tuple[str, list[str], dict[str, str], str]] = [
    # (expected framer name, sample, fields of the first line, content of the first line)
    (
        "json",
        [
            '{"time": "2025-01-02T09:30:15Z", "level": "info", "msg": "request served"}',
            '{"time": "2025-01-02T09:30:16Z", "level": "warn", "msg": "retrying", "try": 2}',
        ],
        {"time": "2025-01-02T09:30:15Z", "level": "info"},
        "request served",
    ),
    (
        "logfmt",
        [
            'time=2025-01-02T09:30:15Z level=info msg="request served" status=200',
            "time=2025-01-02T09:30:16Z level=warn msg=retrying attempt=2",
        ],
        {"time": "2025-01-02T09:30:15Z", "level": "info", "status": "200"},
        "request served",
    ),
    (
        "syslog-rfc5424",
        [
            "<165>1 2025-01-02T09:30:15.042Z web1.example.net shop 812 ORD - order 17 placed",
            '<14>1 2025-01-02T09:30:16Z web1 shop - ID7 [meta seq="3" note="a \\] b"] paid',
            "<14>1 2025-01-02T09:30:17Z web1 shop - - -",
        ],
        {
            "PRI": "165",
            "Version": "1",
            "Timestamp": "2025-01-02T09:30:15.042Z",
            "Host": "web1.example.net",
            "App": "shop",
            "ProcID": "812",
            "MsgID": "ORD",
            "StructuredData": "-",
        },
        "order 17 placed",
    ),
    (
        "syslog-rfc3164",
        [
            "<38>Jan  2 09:30:15 bastion sshd[3141]: Accepted publickey for ops",
            "Jan  2 09:30:16 bastion CRON[99]: (root) CMD (run-parts /etc/cron.hourly)",
            "Jan  2 09:30:17 bastion kernel: [ 12.5] eth0: link up",
        ],
        {
            "PRI": "38",
            "Month": "Jan",
            "Day": "2",
            "Time": "09:30:15",
            "Host": "bastion",
            "Component": "sshd",
            "PID": "3141",
        },
        "Accepted publickey for ops",
    ),
    (
        "iso-level-logger",
        ISO_SAMPLE,
        {"Timestamp": "2025-01-02T09:30:15.042Z", "Level": "INFO", "Component": "http"},
        "listening on :8080",
    ),
    (
        "iso-level-thread-logger",
        [
            "2025-01-02 09:30:15,042 INFO [main] org.example.Server: started on port 8080",
            "2025-01-02 09:30:15,200 ERROR [pool-2-thread-1] org.example.Db: connection lost",
        ],
        {
            "Timestamp": "2025-01-02 09:30:15,042",
            "Level": "INFO",
            "Thread": "main",
            "Component": "org.example.Server",
        },
        "started on port 8080",
    ),
    (
        "iso-thread-level-logger",
        [
            "2025-01-02 09:30:15.042 [main] INFO  o.e.Server - started",
            "2025-01-02 09:30:15.300 [worker-1] DEBUG o.e.Queue - polled 3 items",
        ],
        {
            "Timestamp": "2025-01-02 09:30:15.042",
            "Thread": "main",
            "Level": "INFO",
            "Component": "o.e.Server",
        },
        "started",
    ),
    (
        "iso-logger-level",
        [
            "2025-01-02 09:30:15,042 - app.db - WARNING - slow query (1.2 s)",
            "2025-01-02 09:30:15,043 - app.web - INFO - GET /health 200",
        ],
        {"Timestamp": "2025-01-02 09:30:15,042", "Component": "app.db", "Level": "WARNING"},
        "slow query (1.2 s)",
    ),
    (
        "iso-dash-level-context",
        [
            "2025-01-02 09:30:15,042 - INFO  [main:QuorumPeer[myid=2]@812] - LOOKING",
            "2025-01-02 09:30:15,099 - WARN  [SendWorker:3:Sender@96] - Interrupted",
        ],
        {
            "Timestamp": "2025-01-02 09:30:15,042",
            "Level": "INFO",
            "Context": "main:QuorumPeer[myid=2]@812",
        },
        "LOOKING",
    ),
    (
        "logcat",
        [
            "01-02 09:30:15.042  1000  1234 I ActivityManager: Start proc 4242:com.example/u0a1",
            "01-02 09:30:15.050  4242  4242 E AndroidRuntime: FATAL EXCEPTION: main",
        ],
        {
            "Date": "01-02",
            "Time": "09:30:15.042",
            "Pid": "1000",
            "Tid": "1234",
            "Level": "I",
            "Component": "ActivityManager",
        },
        "Start proc 4242:com.example/u0a1",
    ),
    (
        "iso-level",
        [
            "2025-01-02T09:30:15+01:00 [WARN] disk almost full",
            "2025-01-02T09:30:16+01:00 [INFO] rotated logs",
        ],
        {"Timestamp": "2025-01-02T09:30:15+01:00", "Level": "WARN"},
        "disk almost full",
    ),
    (
        "syslog-iso",
        [
            "2025-01-02T09:30:15.042+00:00 web1 nginx[99]: worker started",
            "2025-01-02T09:30:16.001+00:00 web1 systemd[1]: Started Daily cleanup.",
        ],
        {
            "PRI": "",
            "Timestamp": "2025-01-02T09:30:15.042+00:00",
            "Host": "web1",
            "Component": "nginx",
            "PID": "99",
        },
        "worker started",
    ),
    (
        "plain",
        ["just some words", "and more words here", "nothing structured"],
        {},
        "just some words",
    ),
]


@pytest.mark.parametrize(
    ("name", "sample", "fields", "content"),
    DETECTION_CASES,
    ids=[name for name, *_ in DETECTION_CASES],
)
def test_detects_each_layout(
    name: str, sample: list[str], fields: dict[str, str], content: str
) -> None:
    framer = detect_framer(sample)
    assert framer.name == name
    framed = framer.frame(pa.array(sample))
    assert framed.matched.to_pylist() == [True] * len(sample)
    first_fields, first_content, _ = as_rows(framed)[0]
    assert {k: v for k, v in first_fields.items() if v is not None} == {
        k: v for k, v in fields.items() if v is not None
    }
    assert first_content == content


def test_detection_needs_a_clear_majority() -> None:
    json_lines = [f'{{"msg": "event {i}"}}' for i in range(8)]
    noise = ["plain words", "more plain words", "yet more"]
    assert detect_framer(json_lines + noise[:2]).name == "json"  # 8 of 10
    assert detect_framer(json_lines[:7] + noise).name == "plain"  # 7 of 10


def test_detection_prefers_the_layout_matching_most_lines() -> None:
    # Every line fits "timestamp + level", only some also name a component.
    sample = [
        "2025-01-02T09:30:15Z INFO http: listening",
        "2025-01-02T09:30:16Z INFO starting 4 workers",
        "2025-01-02T09:30:17Z WARN config file missing, using defaults",
    ]
    assert detect_framer(sample).name == "iso-level"


def test_detection_ignores_blank_lines_and_crlf() -> None:
    sample = ["", '{"msg": "a"}\r', "   ", '{"msg": "b"}\r\n']
    assert detect_framer(sample).name == "json"
    assert detect_framer([]).name == "plain"
    assert detect_framer(["", "  "]).name == "plain"


def test_detection_is_deterministic() -> None:
    for _, sample, _, _ in DETECTION_CASES:
        first = detect_framer(sample)
        assert all(detect_framer(list(sample)) == first for _ in range(3))
        # The choice counts lines, so it does not depend on their order either.
        assert detect_framer(sample[::-1]).name == first.name


def test_loghub_lines_without_known_layout_fall_back_to_plain() -> None:
    # HDFS-style lines have no ISO timestamp, month name or key=value pairs.
    sample = [
        "250102 093015 42 INFO dfs.DataNode: Receiving block blk_1",
        "250102 093016 42 INFO dfs.DataNode: Received block blk_1",
    ]
    assert detect_framer(sample) == PlainFramer()
    assert DETECTION_SAMPLE_LINES >= 100


# --------------------------------------------------------------------------------------
# Loghub data: every format against Loghub's own structured files
# --------------------------------------------------------------------------------------

LOGHUB_SYSTEMS = [
    ("loghub-2k", system)
    for system in (
        "HDFS",
        "Hadoop",
        "Spark",
        "Zookeeper",
        "BGL",
        "HPC",
        "Thunderbird",
        "Linux",
        "HealthApp",
        "Apache",
        "Proxifier",
        "OpenSSH",
        "OpenStack",
        "Mac",
    )
] + [("loghub-2k-extra", "Android"), ("loghub-2k-extra", "Windows")]

# Strings pandas reads as NaN by default; Loghub wrote its CSVs through pandas, so a header
# value such as "NULL" (BGL) comes back as an empty cell.
_PANDAS_NA = {
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
}


def loghub_csv_equal(ours: str | None, theirs: str) -> bool:
    """Equal, or equal up to pandas' type coercion when Loghub wrote the CSV.

    pandas parsed all-digit columns as numbers (HDFS ``081109`` -> ``81109``), as floats
    where a column also had missing values (Linux PID ``19939`` -> ``19939.0``), and its NA
    strings as missing (BGL ``NULL`` -> empty). Nothing else is forgiven.
    """
    if ours == theirs:
        return True
    if ours is None:
        return False
    if theirs == "" and ours in _PANDAS_NA:
        return True
    return re.fullmatch(r"[0-9]+", ours) is not None and theirs in {
        str(int(ours)),
        f"{int(ours)}.0",
    }


def read_log_lines(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").split("\n")  # keeps any \r (Android is CRLF)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


@pytest.mark.data
def test_presets_equal_loghub_formats_json(shared_data: Path) -> None:
    formats: dict[str, str] = {}
    for folder in ("loghub-2k", "loghub-2k-extra"):
        formats.update(json.loads((shared_data / folder / "formats.json").read_text()))
    assert dict(PRESETS) == formats


@pytest.mark.data
@pytest.mark.parametrize(("folder", "system"), LOGHUB_SYSTEMS, ids=[s for _, s in LOGHUB_SYSTEMS])
def test_loghub_format_frames_first_lines(shared_data: Path, folder: str, system: str) -> None:
    spec = json.loads((shared_data / folder / "formats.json").read_text())[system]
    lines = read_log_lines(shared_data / folder / system / f"{system}_2k.log")[:200]
    framed = compile_format(spec).frame(pa.array(lines, pa.string()))
    matched = sum(framed.matched.to_pylist())
    assert matched >= 0.99 * len(lines), f"{system}: only {matched} of {len(lines)} matched"


@pytest.mark.data
@pytest.mark.parametrize(("folder", "system"), LOGHUB_SYSTEMS, ids=[s for _, s in LOGHUB_SYSTEMS])
def test_loghub_format_reproduces_structured_csv(
    shared_data: Path, folder: str, system: str
) -> None:
    directory = shared_data / folder / system
    spec = json.loads((shared_data / folder / "formats.json").read_text())[system]
    fmt = compile_format(spec)
    lines = read_log_lines(directory / f"{system}_2k.log")
    with (directory / f"{system}_2k.log_structured_corrected.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(lines) == 2000
    framed = fmt.frame(pa.array(lines, pa.string()))
    assert all(framed.matched.to_pylist())
    contents = framed.content.to_pylist()
    # Content must be exactly Loghub's, line by line.
    content_mismatches = [i for i, row in enumerate(rows) if contents[i] != row["Content"]]
    assert content_mismatches == []
    for name, column in framed.fields.items():
        values = column.to_pylist()
        mismatches = [
            (i + 1, values[i], row[name])
            for i, row in enumerate(rows)
            if not loghub_csv_equal(values[i], row[name])
        ]
        assert mismatches == [], f"{system}.{name}: {mismatches[:5]}"


# What detection picks for Loghub's systems from their first 200 lines. Systems whose header
# is no common layout (HDFS's yyMMdd HHmmss, HealthApp's pipes, ...) fall back to plain.
LOGHUB_DETECTED = {
    "Hadoop": "iso-level-thread-logger",
    "Zookeeper": "iso-dash-level-context",
    "Linux": "syslog-rfc3164",
    "OpenSSH": "syslog-rfc3164",
    "Mac": "syslog-rfc3164",
    "Android": "logcat",
    "HDFS": "plain",
    "HealthApp": "plain",
}


@pytest.mark.data
@pytest.mark.parametrize(("folder", "system"), LOGHUB_SYSTEMS, ids=[s for _, s in LOGHUB_SYSTEMS])
def test_detection_on_loghub_logs(shared_data: Path, folder: str, system: str) -> None:
    lines = read_log_lines(shared_data / folder / system / f"{system}_2k.log")
    framer = detect_framer(lines[:DETECTION_SAMPLE_LINES])
    if system in LOGHUB_DETECTED:
        assert framer.name == LOGHUB_DETECTED[system]
    framed = framer.frame(pa.array(lines, pa.string()))
    assert sum(framed.matched.to_pylist()) >= 0.99 * len(lines)
    if system == "Android":  # logcat detection splits exactly as Loghub's Android format
        loghub = preset("Android").frame(pa.array(lines, pa.string()))
        assert framed.content.to_pylist() == loghub.content.to_pylist()
        for name in framer.field_names:
            assert framed.fields[name].to_pylist() == loghub.fields[name].to_pylist()


def test_field_swallowed_by_a_character_class_is_a_clear_error() -> None:
    with pytest.raises(FormatSpecError, match=r"<Thread> is inside a regex construct"):
        compile_format("<Date> <Time> [<Thread>] <Content>")
