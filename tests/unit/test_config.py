"""The daemon config: unknown keys named by path, env overrides, defaults, schema, examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from logpipe.cli import main
from logpipe.config import DEFAULT_CONFIG_TOML, Config, ConfigError, load_config, parse_config
from tests.conftest import REPO

KAFKA = """
[[sources.kafka]]
bootstrap = "127.0.0.1:9092"
topics = ["logs"]
"""


def errors_of(text: str, environ: dict[str, str] | None = None) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, environ=environ or {})
    return info.value.errors


def test_defaults_from_an_empty_file() -> None:
    cfg = parse_config("", environ={})
    assert (cfg.server.host, cfg.server.port) == ("127.0.0.1", 3100)
    assert cfg.logging.format == "json"
    assert cfg.sources.kafka == [] and cfg.sources.files == []
    assert cfg.store.tenant == "fake"


def test_unknown_keys_are_named_by_their_dotted_path() -> None:
    text = KAFKA.replace("topics", "topcis") + "\n[server]\nprot = 1\n[bogus]\nx = 1\n"
    errors = errors_of(text)
    assert ("sources.kafka[0].topcis", "unknown key") in errors
    assert ("sources.kafka[0].topics", "Field required") in errors
    assert ("server.prot", "unknown key") in errors
    assert ("bogus", "unknown key") in errors


def test_every_error_is_reported_with_its_type_problem() -> None:
    errors = dict(errors_of('[server]\nport = 70000\n[logging]\nformat = "xml"\n'))
    assert "less than or equal to 65535" in errors["server.port"]
    assert "'json' or 'text'" in errors["logging.format"]


def test_bad_toml_says_where() -> None:
    [(path, message)] = errors_of("[server\n")
    assert path == "" and "line 1" in message


def test_env_overrides_win_and_are_typed() -> None:
    env = {
        "LOGPIPE_SERVER__PORT": "3200",
        "LOGPIPE_SERVER__HOST": "0.0.0.0",
        "LOGPIPE_SOURCES__KAFKA__0__GROUP": "g2",
        "LOGPIPE_SOURCES__KAFKA__0__TOPICS": '["a", "b"]',
        "LOGPIPE_SHARED_DATA": "/not/config",  # no double underscore: not an override
    }
    cfg = parse_config(KAFKA + "[server]\nport = 3100\n", environ=env)
    assert cfg.server.port == 3200 and cfg.server.host == "0.0.0.0"
    assert cfg.sources.kafka[0].group == "g2"
    assert cfg.sources.kafka[0].topics == ["a", "b"]


def test_env_override_errors_name_the_variable() -> None:
    [(path, message)] = errors_of("", {"LOGPIPE_SERVER__PROT": "1"})
    assert path == "server.prot" and "LOGPIPE_SERVER__PROT" in message
    [(path, message)] = errors_of("", {"LOGPIPE_SERVER__PORT": "many"})
    assert path == "server.port" and "LOGPIPE_SERVER__PORT" in message


def test_source_names_must_be_unique() -> None:
    text = '[[sources.files]]\npaths = ["a"]\n[[sources.files]]\npaths = ["b"]\n'
    unique = "source names must be unique (pushes to the API are 'push')"
    assert errors_of(text) == [("sources", f"{unique}: ['files']")]
    # "push" is taken while the API (and so pushes) is on
    text = '[[sources.files]]\nname = "push"\npaths = ["a"]\n'
    assert errors_of(text) == [("sources", f"{unique}: ['push']")]
    assert parse_config(text + "[server]\nenabled = false\n", environ={}).sources.files


def test_label_names_are_checked() -> None:
    errors = dict(errors_of('[[sources.files]]\npaths = ["a"]\nlabels = { "bad-name" = "x" }\n'))
    assert "invalid label name" in errors["sources.files[0].labels"]


def test_embedded_default_tails_the_shipped_samples() -> None:
    cfg = load_config(None, environ={})
    [files] = cfg.sources.files
    matched = [p for pattern in files.paths for p in REPO.glob(pattern)]
    assert matched, "the embedded default must tail files shipped in the repo"
    assert sum(p.stat().st_size for p in matched) < 200_000
    assert cfg.server.port == 3100 and cfg.store.root.startswith(".run/")
    assert DEFAULT_CONFIG_TOML.startswith("[store]")


def test_schema_is_json_schema_of_every_section() -> None:
    schema = Config.model_json_schema()
    sections = {"store", "sources", "sinks", "pipeline", "parse", "server", "logging", "detect"}
    assert set(schema["properties"]) == sections
    assert schema["additionalProperties"] is False


EXAMPLES = sorted([*REPO.glob("deploy/**/*.toml")])
YAMLS = sorted([*REPO.glob("deploy/**/*.yaml"), *REPO.glob("deploy/**/*.yml")])


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(REPO)))
def test_example_configs_load(path: Path) -> None:
    load_config(path, environ={})


def yaml_as_json(path: Path) -> object:
    """Our YAML files are JSON-compatible (comment lines allowed) so no YAML parser is needed."""
    text = "\n".join(
        line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")
    )
    return json.loads(text)


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: str(p.relative_to(REPO)))
def test_yaml_files_parse(path: Path) -> None:
    assert isinstance(yaml_as_json(path), dict)


def test_there_are_examples() -> None:
    assert any(p.name == "logpipe.toml" for p in EXAMPLES)


def test_config_check_good_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text(KAFKA)
    assert main(["config", "check", str(good)]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and "logs @ 127.0.0.1:9092" in out


def test_config_check_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(KAFKA.replace("topics", "topcis") + "[server]\nport = -1\n")
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "sources.kafka[0].topcis: unknown key" in err
    assert "server.port:" in err


def test_config_schema_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "Config"


def test_sink_names_must_be_unique_and_not_the_stores() -> None:
    bad = '[[sinks.kafka]]\nname = "store"\nbootstrap = "x:1"\ntopic = "t"\n'
    with pytest.raises(ConfigError, match="sink names must be unique"):
        parse_config(bad, environ={})
    ok = parse_config('[[sinks.kafka]]\nbootstrap = "x:1"\ntopic = "out"\n', environ={})
    assert ok.sinks.kafka[0].name == "kafka-out"


def test_the_llm_parser_section_is_validated() -> None:
    cfg = parse_config('[parse]\nparser = "llm"\n[parse.llm]\nbackend = "openai"\n'
                       'base_url = "http://127.0.0.1:8000/v1"\nmodel = "m"\n'
                       "max_calls_per_second = 0.5\n", environ={})  # fmt: skip
    assert cfg.parse.parser == "llm"
    assert (cfg.parse.llm.backend, cfg.parse.llm.max_calls_per_second) == ("openai", 0.5)
    assert parse_config("", environ={}).parse.parser == "stat"
    errors = errors_of('[parse]\nparser = "gpt"\n[parse.llm]\nburst = 0\nkey = "x"\n')
    assert {path for path, _ in errors} == {"parse.parser", "parse.llm.burst", "parse.llm.key"}


def test_the_daemon_builds_the_llm_parse_stage(tmp_path: Path) -> None:
    from logpipe.daemon import build_stages
    from logpipe.parsing.llm import LLMParser
    from logpipe.pipeline import ParseStage

    cfg = parse_config(f'[store]\nroot = "{tmp_path}"\n[parse]\nparser = "llm"\n'
                       "[parse.llm]\nmax_calls_per_second = 3\nburst = 4\n",
                       environ={})  # fmt: skip
    (stage,) = build_stages(cfg)
    assert isinstance(stage, ParseStage) and isinstance(stage.miner, LLMParser)
    assert stage.miner.budget.rate == 3 and stage.miner.budget.burst == 4
