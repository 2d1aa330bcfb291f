"""The ``[detect]`` config section: sinks by type, errors named by their key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from logpipe.cli import main
from logpipe.config import (
    AlertmanagerAlertConfig,
    ConfigError,
    KafkaAlertConfig,
    WebhookAlertConfig,
    parse_config,
)

FULL = r"""
[detect]
enabled = true
model_dir = "models/glad-auth"
session_key = 'blk_-?\d+'
idle_secs = 45
max_open_windows = 500
max_events_per_window = 300

[[detect.alerts]]
type = "webhook"
url = "https://hooks.example/logpipe"
headers = { Authorization = "Bearer x" }
max_attempts = 5

[[detect.alerts]]
type = "alertmanager"
url = "http://alertmanager:9093"
severity = "page"

[[detect.alerts]]
type = "kafka"
bootstrap = "kafka:9092"
topic = "alerts"
"""


def errors_of(text: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, environ=environ or {})
    return dict(info.value.errors)


def test_disabled_by_default() -> None:
    detect = parse_config("", environ={}).detect
    assert not detect.enabled and detect.alerts == [] and detect.model_dir is None


def test_a_full_section_parses_into_typed_sinks() -> None:
    d = parse_config(FULL, environ={}).detect
    assert d.enabled and d.session_key == r"blk_-?\d+" and d.window_secs is None
    assert (d.idle_secs, d.max_open_windows, d.max_events_per_window) == (45, 500, 300)
    webhook, manager, kafka = d.alerts
    assert isinstance(webhook, WebhookAlertConfig) and webhook.max_attempts == 5
    assert webhook.headers == {"Authorization": "Bearer x"} and webhook.name == "webhook"
    assert isinstance(manager, AlertmanagerAlertConfig) and manager.severity == "page"
    assert isinstance(kafka, KafkaAlertConfig) and kafka.topic == "alerts"


def test_sink_errors_name_the_sink_and_key() -> None:
    text = """
[[detect.alerts]]
type = "webhook"
urll = "http://x"
[[detect.alerts]]
type = "pagerduty"
[[detect.alerts]]
url = "http://x"
[[detect.alerts]]
type = "alertmanager"
url = "alertmanager:9093"
timeout_secs = 0
[[detect.alerts]]
type = "kafka"
bootstrap = "k:9092"
"""
    errors = errors_of(text)
    assert errors["detect.alerts[0].urll"] == "unknown key"
    assert errors["detect.alerts[0].url"] == "Field required"
    assert errors["detect.alerts[1].type"] == "must be one of webhook, alertmanager, kafka"
    assert errors["detect.alerts[2].type"] == "required: one of webhook, alertmanager, kafka"
    assert errors["detect.alerts[3].url"] == "must start with http:// or https://"
    assert "greater than 0" in errors["detect.alerts[3].timeout_secs"]
    assert errors["detect.alerts[4].topic"] == "Field required"
    assert len(errors) == 7


def test_section_errors_name_their_keys() -> None:
    assert errors_of("[detect]\nenabled = true\n") == {
        "detect.model_dir": "required when detect.enabled is true",
        "detect.window_secs": "required when detect.enabled is true (or session_key)",
    }
    both = '[detect]\nwindow_secs = 60\nsession_key = "blk_\\\\d+"\n'
    assert errors_of(both) == {"detect.session_key": "give window_secs or session_key, not both"}
    bad = errors_of("[detect]\nsession_key = 'blk_('\nwindow_secs = -1\nmax_open_windows = 0\n")
    assert bad["detect.session_key"].startswith("not a valid regular expression")
    assert "greater than 0" in bad["detect.window_secs"]
    assert "greater than 0" in bad["detect.max_open_windows"]
    twice = '[[detect.alerts]]\ntype = "webhook"\nurl = "http://a"\n' * 2
    assert errors_of(twice) == {"detect.alerts": "alert sink names must be unique: ['webhook']"}
    assert errors_of("[detect]\nenabeld = true\n") == {"detect.enabeld": "unknown key"}


def test_env_overrides_reach_sinks_and_name_the_variable() -> None:
    env = {"LOGPIPE_DETECT__ALERTS__0__URL": "http://other:9093", "LOGPIPE_DETECT__IDLE_SECS": "5"}
    d = parse_config(FULL, environ=env).detect
    assert d.alerts[0].url == "http://other:9093" and d.idle_secs == 5  # type: ignore[union-attr]
    errors = errors_of(FULL, {"LOGPIPE_DETECT__ALERTS__1__SEVERTY": "x"})
    assert errors == {
        "detect.alerts[1].severty": "unknown key (from LOGPIPE_DETECT__ALERTS__1__SEVERTY)"
    }


def test_config_check_summarises_detection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "logpipe.toml"
    path.write_text(FULL)
    assert main(["config", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "detect:  models/glad-auth, sessions by 'blk_-?\\\\d+'" in out
    assert "alerts:  webhook (webhook), alertmanager (alertmanager), kafka-alerts (kafka)" in out
