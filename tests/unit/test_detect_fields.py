"""Typed entities: slot types from the template text and value shapes, decided once per template."""

from __future__ import annotations

import pytest

from logpipe.detect.fields import (
    ENTITY_TYPES,
    MEASURE_TYPES,
    Entity,
    FieldExtractor,
    classify_slot,
    identity_kind,
    normalise,
)


@pytest.mark.parametrize(
    ("template", "params", "expected"),
    [
        (
            "Receiving block <*> src: <*>:<*> dest: <*>:<*>",
            ("blk_-160899", "/10.250.19.102", "54106", "/10.250.19.102", "50010"),
            [
                "block:blk_-160899",
                "ip:10.250.19.102",
                "port:54106",
                "ip:10.250.19.102",
                "port:50010",
            ],
        ),
        (
            "Accepted password for <*> from <*> port <*> ssh2",
            ("Alice", "10.0.0.5", "22"),
            ["user:alice", "ip:10.0.0.5", "port:22"],
        ),
        (
            "GET <*> from <*> status=<*> bytes=<*> in <*> ms",
            ("/api/v1/items", "10.1.1.1", "200", "5120", "35"),
            ["path:/api/v1/items", "ip:10.1.1.1", "number:~2^8", "size:~2^12", "duration:~2^5"],
        ),
        (
            "session opened for user <*> on <*> pid=<*> took <*>",
            ("quinn.petrov", "db-1.prod.internal", "4242", "1.5s"),
            ["user:quinn.petrov", "host:db-1.prod.internal", "pid:4242", "duration:~2^11"],
        ),
        (
            "<*> thrown at <*> mask <*> by <*> in service=<*>",
            ("java.lang.NullPointerException", "0x7f3a9bc0", "0x40", "ops@example.com", "billing"),
            [
                "component:java.lang.NullPointerException",
                "id:0x7f3a9bc0",
                "number:~2^6",
                "email:ops@example.com",
                "component:billing",
            ],
        ),
        (
            "fetch <*> session <*> state <*>",
            ("https://x.io/a?b=1", "3f2b1c9e-1111-2222-3333-444455556666", "RUNNING"),
            [
                "url:https://x.io/a?b=1",
                "session:3f2b1c9e-1111-2222-3333-444455556666",
                "word:RUNNING",
            ],
        ),
    ],
)
def test_slot_types_and_normalised_values(
    template: str, params: tuple[str, ...], expected: list[str]
) -> None:
    assert [e.name for e in FieldExtractor().entities(template, params)] == expected


def test_types_are_decided_once_per_template_from_its_first_line() -> None:
    extractor = FieldExtractor()
    template = "job <*> finished with <*>"
    first = extractor.entities(template, ("12", "OK"))
    # a later line with other shapes keeps the template's slot types
    later = extractor.entities(template, ("abc", "17"))
    assert [e.type for e in first] == [e.type for e in later] == ["id", "word"]
    assert extractor.stats.templates == 1
    assert extractor.stats.lines == 2


def test_a_line_that_does_not_fit_its_template_is_typed_by_shape_and_counted() -> None:
    extractor = FieldExtractor()
    out = extractor.entities("user <*> from <*>", ("10.0.0.1",))
    assert out == [Entity("ip", "10.0.0.1")]
    assert extractor.stats.slot_mismatches == 1
    # and it did not decide the template's plan
    assert [e.type for e in extractor.entities("user <*> from <*>", ("bob", "10.0.0.2"))] == [
        "user",
        "ip",
    ]


def test_empty_values_are_skipped_and_the_plan_cache_is_bounded() -> None:
    extractor = FieldExtractor(max_templates=2)
    assert extractor.entities("a <*> b <*>", ("", "  ")) == []
    for i in range(5):
        extractor.entities(f"t{i} <*>", ("x",))
    assert extractor.stats.evicted_plans >= 3


def test_classify_slot_uses_the_word_before_and_the_unit_after() -> None:
    assert classify_slot("connect to port ", "", "8080") == "port"
    assert classify_slot("waited ", " seconds", "30") == "duration"
    assert classify_slot("read ", " bytes", "4096") == "size"
    assert classify_slot("", "", "8080") == "number"
    # a unit that names the next value (``bytes=<*>``) is not this slot's unit
    assert classify_slot("status=", " bytes=", "200") == "number"
    # an address keyword never overrides a value that is not an address
    assert classify_slot("from ", "", "alice") == "word"


def test_normalise_buckets_quantities_and_keeps_small_codes() -> None:
    assert normalise("number", "2") == "2"
    assert normalise("number", "67108864") == normalise("number", "67108000") == "~2^26"
    assert normalise("size", "2MB") == "~2^21"
    assert normalise("duration", "2s") == normalise("duration", "2000") == "~2^11"
    assert normalise("duration", "0") == "0"
    assert normalise("ip", "/10.0.0.1:80") == "10.0.0.1"
    assert normalise("host", "DB1.Example.COM.") == "db1.example.com"


def test_identity_namespaces() -> None:
    assert identity_kind("user") == identity_kind("host") == "name"
    assert identity_kind("port") == "port"
    assert set(ENTITY_TYPES) >= MEASURE_TYPES
