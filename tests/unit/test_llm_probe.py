"""The variable probe: labels from aligning with the truth, features of each candidate token
from one forward pass, a head that round-trips through safetensors, the threshold chosen
leave-one-system-out, and the local backend's probe mode only ever turning constant tokens
into variables (checked by the parser like any answer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

pytest.importorskip("peft")

from logpipe.models.llm_parser.local import LocalBackend
from logpipe.models.llm_parser.probe import (
    VarProbe,
    apply_probe,
    candidates,
    fit_probe,
    piece_features,
    truth_labels,
)
from logpipe.models.llm_parser.train_probe import (
    LabelledSystem,
    ProbeRows,
    choose_threshold,
    collect,
    find_labelled_systems,
    rewrite,
    train,
)

from logpipe.errors import ModelError
from logpipe.parsing.llm import LLMParser, LLMParserConfig
from logpipe.parsing.llm_backends import ParseRequest
from logpipe.parsing.masking import VAR
from logpipe.parsing.params import template_regex
from tests.tinylm import tiny_model, tiny_tokenizer

LAYERS = (1, 2)  # the tiny model has two


def test_truth_labels_mark_constants_the_truth_calls_variables() -> None:
    ours = "session opened for user root by (uid=<*>)"
    truth = "session opened for user <*> by (uid=<*>)"
    labels = truth_labels(ours, truth)
    assert labels[4] == 1  # root
    assert all(labels[i] == 0 for i in (0, 1, 2, 3, 5, 6))
    # a run of another length does not align: no label rather than a guess
    assert truth_labels("a b c d", "a <*> d") == {0: 0, 3: 0}


def test_candidates_are_constant_words_with_a_letter_or_digit() -> None:
    assert candidates("Failed password for root from <*> port <*> - ssh2") == [0, 1, 2, 3, 4, 6, 9]


def test_features_are_one_row_per_candidate_from_one_forward_pass() -> None:
    tok = tiny_tokenizer()
    model = tiny_model(len(tok))
    indices, x = piece_features(model, tok, "user root logged in from <*>", LAYERS)
    assert indices == [0, 1, 2, 3, 4]
    assert x.shape == (5, 2 * len(LAYERS) * model.config.hidden_size)
    assert x.dtype == np.float32 and np.isfinite(x).all()
    none, empty = piece_features(model, tok, "<*> <*> :", LAYERS)
    assert none == [] and empty.shape[0] == 0


def test_the_head_round_trips_and_decides_above_its_threshold(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6)).astype(np.float32)
    y = (x[:, 2] > 1.0).astype(np.int64)  # a variable when feature 2 is high
    probe = fit_probe(x, y, c=1.0, threshold=0.9, layers=LAYERS)
    p = probe.probabilities(x)
    assert p[y == 1].mean() > 0.8 and p[y == 0].mean() < 0.3
    probe.save(tmp_path / "head")
    again = VarProbe.load(tmp_path / "head")
    assert np.allclose(again.probabilities(x), p, atol=1e-5)
    assert again.threshold == 0.9 and again.layers == LAYERS
    assert apply_probe("user root  in", [1, 2], np.array([0.95, 0.5]), 0.9) == "user <*> in"
    with pytest.raises(ModelError, match="cannot load the variable probe"):
        VarProbe.load(tmp_path / "nowhere")
    (tmp_path / "head" / "probe.safetensors").write_bytes(b"truncated")
    with pytest.raises(ModelError, match="cannot load the variable probe"):
        VarProbe.load(tmp_path / "head")


def _rows(name: str, n_users: int) -> ProbeRows:
    """A system whose template keeps a user name constant (the truth: a variable); feature
    0 says "this is a user name", so a head can learn it from other systems."""
    predicted = [f"session opened for user {u}" for u in ("root", "admin")[:n_users]] * 5
    truth: list[str | None] = ["session opened for user <*>"] * len(predicted)
    rows: list[tuple[str, int, int]] = []
    feats: list[list[float]] = []
    for template in dict.fromkeys(predicted):
        for i in range(5):
            rows.append((template, i, int(i == 4)))
            feats.append([float(i == 4), 0.1 * i, 1.0])
    return ProbeRows(name, np.array(feats, np.float32), rows, predicted, truth)


def test_the_threshold_is_chosen_leave_one_system_out_and_the_rewrite_is_what_it_scores() -> None:
    systems = [_rows("A", 1), _rows("B", 2), _rows("C", 2)]
    best, gains = choose_threshold(systems, c=1.0, thresholds=(0.5, 0.9), layers=LAYERS)
    assert best in (0.5, 0.9) and all(g > 0 for g in gains.values())
    probe = train(systems, c=1.0, layers=LAYERS)
    assert probe.card["systems"] == ["A", "B", "C"] and probe.card["candidates_variable"] == 5
    held = systems[1]
    out = rewrite(held, probe.probabilities(held.features), probe.threshold)
    assert set(out) == {"session opened for user <*>"}


def test_collect_labels_a_parsed_system(tmp_path: Path) -> None:
    tok = tiny_tokenizer()
    model = tiny_model(len(tok))
    lines = [f"user {u} logged in from 10.0.0.{i}" for i, u in enumerate(["root"] * 6)]
    system = LabelledSystem("Tiny", lines, ["user <*> logged in from <*>"] * len(lines))
    rows = collect(model, tok, system, LAYERS)
    assert rows.predicted == ["user root logged in from <*>"] * 6
    assert [(i, y) for _, i, y in rows.rows] == [(0, 0), (1, 1), (2, 0), (3, 0), (4, 0)]
    assert rows.features.shape[0] == 5
    # the shared-data layout is read by path
    sys_dir = tmp_path / "loghub-2k" / "Tiny"
    sys_dir.mkdir(parents=True)
    (sys_dir / "Tiny_2k.log_structured_corrected.csv").write_text(
        "LineId,Content,EventTemplate\n1,user root logged in,user <*> logged in\n"
    )
    (found,) = find_labelled_systems(tmp_path)
    assert (found.name, found.contents, found.truth) == ("Tiny", ["user root logged in"],
                                                         ["user <*> logged in"])  # fmt: skip


def _constant_probe(width: int, intercept: float) -> VarProbe:
    zeros = np.zeros(width, np.float32)
    return VarProbe(zeros, np.ones(width, np.float32), zeros, intercept, 0.5, LAYERS)


def test_probe_mode_only_turns_constant_tokens_into_checked_variables() -> None:
    tok = tiny_tokenizer()
    model = tiny_model(len(tok))
    width = 2 * len(LAYERS) * model.config.hidden_size
    stat = "Failed password for root from <*> port <*> ssh2"
    request = ParseRequest(("Failed password for root from 10.0.0.1 port 22 ssh2",), stat)
    sure = LocalBackend(model, tok, mode="probe", probe=_constant_probe(width, 10.0))
    answer = sure.propose(request)
    assert answer.split() == [VAR if VAR not in t else t for t in stat.split()]
    never = LocalBackend(model, tok, mode="probe", probe=_constant_probe(width, -10.0))
    assert never.propose(request) == stat
    with pytest.raises(ValueError, match="needs a probe"):
        LocalBackend(model, tok, mode="probe")
    # through the parser: whatever the probe says is checked before it is adopted
    parser = LLMParser(sure, config=LLMParserConfig(max_calls_per_second=0))
    lines = [f"Failed password for root from 10.0.0.{i} port {100 + i} ssh2" for i in range(4)]
    text = pa.array(lines)
    templates, _ = parser.line_templates(parser.add_batch(text), text)
    out = [str(t) for t in templates.to_pylist()]
    assert all(template_regex(t).fullmatch(x) for t, x in zip(out, lines, strict=True))
    assert parser.stats.model_calls == 1
