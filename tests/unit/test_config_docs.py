"""docs/CONFIG.md is the reference generated from the config schema, and it is complete."""

from __future__ import annotations

import typing
from typing import Any

import pytest
from pydantic import BaseModel

from logpipe.cli import main
from logpipe.config import Config, env_overrides, parse_config
from logpipe.config_docs import config_keys, render_config_docs
from tests.conftest import REPO


def _models(annotation: object) -> list[type[BaseModel]]:
    """The config sections an annotation holds (through Optional, list, Annotated, unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _leaves(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Dotted paths of every leaf key, from the pydantic models themselves."""
    out: set[str] = set()
    for name, info in model.model_fields.items():
        subs = _models(info.annotation)
        if not subs:
            out.add(prefix + name)
        is_list = typing.get_origin(info.annotation) is list
        for sub in subs:
            out |= _leaves(sub, f"{prefix}{name}{'[]' if is_list else ''}.")
    return out


def test_docs_config_md_is_the_generated_reference() -> None:
    text = (REPO / "docs" / "CONFIG.md").read_text(encoding="utf-8")
    assert text == render_config_docs(), (
        "docs/CONFIG.md is out of date: run `logpipe config docs > docs/CONFIG.md`"
    )


def test_every_key_is_documented_with_type_default_env_and_description() -> None:
    keys = config_keys()
    assert {k.path for k in keys} == _leaves(Config)
    for k in keys:
        assert k.type and k.env.startswith("`LOGPIPE_") and k.description, k
        assert k.default, k


def test_each_documented_env_variable_sets_its_key() -> None:
    """The variable names the page prints work, for a scalar of every section."""
    base = (
        '[[sources.kafka]]\nbootstrap = "k:9092"\ntopics = ["t"]\n'
        '[[sources.files]]\npaths = ["a"]\nmultiline = {}\n'
        '[[sinks.kafka]]\nbootstrap = "k:9092"\ntopic = "o"\n'
    )
    samples = {"integer": "7", "number": "7.5", "boolean": "false", "string": "x"}
    for k in config_keys():
        kind = k.type.split(",")[0].split(" ")[0]
        if kind not in samples or k.path.startswith("detect.alerts[]"):
            continue  # an alert sink needs its type first; lists follow the same rule
        var = k.env.strip("`").replace("<N>", "0")
        value = samples[kind]
        [(path, parsed, _)] = env_overrides({var: value})
        node: Any = parse_config(base, environ={var: value}).model_dump()
        for part in path:
            node = node[part]
        assert node == parsed, (k.path, var, node)


def test_config_docs_command_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "docs"]) == 0
    assert capsys.readouterr().out == render_config_docs()
