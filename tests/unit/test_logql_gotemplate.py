"""Go template field chains as Loki runs them: ``line_format``'s data is a map of label name
to string (``missingkey=zero``), so ``.a.b`` parses, and evaluating it is an execution
error (the line is kept with ``__error__="TemplateFormatErr"``), never a parse error."""

from __future__ import annotations

import pytest

from logpipe.logql import ast, parse_query
from logpipe.logql.gotemplate import TemplateError, compile_template
from logpipe.logql.pipeline import Rows, run_pipeline

LABELS = {"a": "x", "labels": "lbl", "component": "nova"}


@pytest.mark.parametrize(
    "source",
    [
        "{{.labels.component}}",
        "{{ .timestamp }} {{ .labels.component }} {{ .content }}",
        "{{ .a.b.c }}",
        "{{ (.a).b }}",
        "{{ .labels.component | ToUpper }}",
        '{{ .a "arg" }}',  # Go parses a field with arguments; running it is the error
        '{{ "x" "y" }}',
    ],
)
def test_chains_and_arguments_compile(source: str) -> None:
    compile_template(source)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{.labels.component}}", "can't evaluate field component in type string"),
        ("{{.missing.component}}", "can't evaluate field component in type string"),
        ("{{ (.a).b }}", "can't evaluate field b in type string"),
        ("{{ (len .a).b }}", "can't evaluate field b in type int"),
        ("{{ if .a.b }}y{{ end }}", "can't evaluate field b in type string"),
        ('{{ .a "arg" }}', "a is not a method but has arguments"),
        ('{{ "x" "y" }}', "can't give argument to non-function"),
        ("{{ .a | .b }}", "b is not a method but has arguments"),  # the piped value
        ("{{ .a | (ToUpper .b) }}", "can't give argument to non-function"),
    ],
)
def test_a_field_of_a_string_is_an_execution_error(source: str, message: str) -> None:
    template = compile_template(source)
    with pytest.raises(TemplateError, match=message):
        template.render(LABELS, "the line", 0)


def test_chains_on_the_label_map_look_labels_up() -> None:
    assert compile_template("{{ (.).a }}").render(LABELS) == "x"
    assert compile_template("{{ (.).nosuch }}|").render(LABELS) == "|"  # missingkey=zero
    assert compile_template("{{ . }}").render({"b": "2", "a": "1"}) == "map[a:1 b:2]"


@pytest.mark.parametrize(
    "source",
    ['{{ .a | "x" }}', "{{ .a | . }}", "{{ .a | 3 }}", "{{ .a | true }}"],
)
def test_a_value_after_a_pipe_is_a_parse_error_as_in_go(source: str) -> None:
    with pytest.raises(TemplateError, match="non executable command in pipeline stage 2"):
        compile_template(source)


def test_the_dataset_query_with_a_chain_parses_and_keeps_its_lines() -> None:
    query = ('{application="openstack-eu-west"} |= "Bad response code" '
             '| line_format "{{.timestamp}} {{.labels.component}} {{.content}}"')  # fmt: skip
    expr = parse_query(query)
    assert isinstance(expr, ast.LogExpr)
    line = "Bad response code while validating token"
    rows = run_pipeline(Rows.of({"application": "openstack-eu-west"}, [1], [line]), expr.stages)
    assert rows.lines == [line]
    assert rows.labels[0]["__error__"] == "TemplateFormatErr"
    assert "can't evaluate field component in type string" in rows.labels[0]["__error_details__"]
