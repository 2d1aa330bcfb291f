"""``logpipe detect train|score`` end to end on a generated log: the model directory holds
what scoring needs, new logs are cut as at training, and a planted session of events the
system never logged outranks every normal session."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from logpipe.cli import main
from logpipe.detect.synthetic import (
    SESSION_KEY_PATTERN,
    SYNTHETIC_FORMAT,
    SyntheticConfig,
    generate,
)

PLANTED = "zz-planted"


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("detect-cli")
    whole, truth = root / "all.log", root / "truth.jsonl"
    generate(SyntheticConfig(sessions=160, anomaly_rate=0.0, seed=11)).write(whole, truth)
    lines = whole.read_text(encoding="utf-8").splitlines(keepends=True)
    cut = len(lines) * 7 // 10
    train, score = root / "train.log", root / "score.log"
    train.write_text("".join(lines[:cut]), encoding="utf-8")
    stamp = lines[-1].split(" ", 2)[:2]
    planted = [
        f"{stamp[0]} {stamp[1]} ERROR vault: root token revoked for operator from "
        f"203.0.113.77 on keystore-9 sid={PLANTED}\n",
        f"{stamp[0]} {stamp[1]} ERROR vault: sealed after 3 failed unseal attempts sid={PLANTED}\n",
    ]
    score.write_text("".join(lines[cut:] + planted), encoding="utf-8")
    return root, train, score


def test_train_then_score(
    logs: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root, train, score = logs
    model = root / "model"
    args = ["detect", "train", str(train), "--format", SYNTHETIC_FORMAT]
    args += ["--session-key", SESSION_KEY_PATTERN, "--epochs", "2", "--out", str(model), "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["train_windows"] + summary["validation_windows"] == summary["windows"]
    for name in ("config.json", "model.safetensors", "pipeline.json", "miner.json"):
        assert (model / name).is_file(), name
    assert json.loads((model / "config.json").read_text())["detector"] == "glad"

    assert main(["detect", "score", str(score), "--model", str(model), "--all", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    keys = set(re.findall(r"sid=(\S+)", score.read_text(encoding="utf-8")))
    assert {r["key"] for r in body["results"]} == keys  # every session scored, once
    assert body["threshold"] == pytest.approx(summary["threshold"])
    ranked = sorted(body["results"], key=lambda r: -r["score"])
    assert ranked[0]["key"] == PLANTED and ranked[0]["anomalous"]
    assert ranked[0]["edges"], "an alert names the edges that explain it"

    # the default view lists anomalies only, and the planted session is among them
    assert main(["detect", "score", str(score), "--model", str(model)]) == 0
    assert PLANTED in capsys.readouterr().out


def test_usage_errors(logs: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    root, train, _ = logs
    base = ["detect", "train", str(train), "--out", str(root / "m")]
    assert main([*base, "--session-key", "sid=\\S+"]) == 2  # no format
    assert "log format" in capsys.readouterr().err
    fmt = ["--format", SYNTHETIC_FORMAT]
    assert main([*base, *fmt]) == 2  # neither sessions nor windows
    assert main([*base, *fmt, "--session-key", "x", "--window", "5m"]) == 2
    assert main([*base, *fmt, "--window", "five"]) == 2
    assert "--window" in capsys.readouterr().err
    assert main(["detect", "score", str(train), "--model", str(root)]) == 1  # not a model
    assert "pipeline.json" in capsys.readouterr().err
