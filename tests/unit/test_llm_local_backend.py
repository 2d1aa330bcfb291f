"""The local model backend: the scoring mode may only turn the statistical template's
constant tokens into variables (decided where ``<*>`` and the token part), the generating
mode shares the NL2LogQL decoding loop and stops at the end of the line; and (slow) the
real SmolLM2-135M on this CPU through the parser."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pytest
import torch

pytest.importorskip("peft")

from logpipe.models.llm_parser.demos import load_demonstrations
from logpipe.models.llm_parser.local import LocalBackend
from logpipe.models.nl2logql.generate import line_end

from logpipe.parsing.llm import LLMParser, LLMParserConfig
from logpipe.parsing.llm_backends import ParseRequest
from logpipe.parsing.masking import VAR
from logpipe.parsing.params import template_regex
from tests.tinylm import tiny_tokenizer
from tests.unit.test_nl2logql_generate import ScriptedModel

STAT = "Failed password for root from <*> port <*> ssh2"
REQUEST = ParseRequest(("Failed password for root from 10.0.0.1 port 22 ssh2",), STAT,
                       tuple(load_demonstrations()[:2]))  # fmt: skip


@dataclass
class _Out:
    logits: torch.Tensor


class PreferringModel:
    """Every position predicts ``favourite`` (a character token) above all else."""

    device = torch.device("cpu")

    def __init__(self, tok: Any, favourite: str | None) -> None:
        self.vocab = len(tok)
        self.favourite = None if favourite is None else tok.convert_tokens_to_ids(favourite)
        self.calls = 0

    def __call__(self, input_ids: torch.Tensor, **_: Any) -> _Out:
        self.calls += 1
        logits = torch.zeros((1, input_ids.shape[1], self.vocab))
        if self.favourite is not None:
            logits[..., self.favourite] = 5.0
        return _Out(logits)


def test_scoring_is_one_forward_pass_and_only_generalises_constant_tokens() -> None:
    tok = tiny_tokenizer()
    keen = PreferringModel(tok, "<")  # always expects a variable
    answer = LocalBackend(keen, tok).propose(REQUEST)
    assert keen.calls == 1
    assert answer.split() == [VAR if VAR not in t and any(c.isalnum() for c in t) else t
                              for t in STAT.split()]  # fmt: skip
    indifferent = PreferringModel(tok, None)  # no preference: keep the text
    assert LocalBackend(indifferent, tok).propose(REQUEST) == STAT
    copying = PreferringModel(tok, "r")  # expects "root" where it stands
    out = LocalBackend(copying, tok, margin=0.0).propose(REQUEST)
    assert "root" in out.split()


def test_generation_stops_at_the_end_of_the_line_in_the_shared_loop() -> None:
    tok = tiny_tokenizer()
    script = "Failed password for <*> from <*> port <*> ssh2\nThis template has three"
    model = ScriptedModel(tok, [script])
    backend = LocalBackend(model, tok, mode="generate")
    assert backend.propose(REQUEST) == script.split("\n", maxsplit=1)[0]
    assert line_end("  \nabc") is None and line_end("abc\nd") == 3 and line_end("abc") is None


def test_an_unknown_mode_is_refused() -> None:
    tok = tiny_tokenizer()
    with pytest.raises(ValueError, match="mode"):
        LocalBackend(PreferringModel(tok, None), tok, mode="beam")


@pytest.mark.slow
def test_the_real_model_on_this_cpu_gives_checked_templates() -> None:
    backend = LocalBackend.load()
    answer = backend.propose(REQUEST)
    assert all(a in (s, VAR) for a, s in zip(answer.split(), STAT.split(), strict=True))
    parser = LLMParser(backend, config=LLMParserConfig(max_calls_per_second=0))
    lines = [f"Failed password for {u} from 10.0.{i}.7 port {100 + i} ssh2"
             for i, u in enumerate(["root", "root", "admin"])]  # fmt: skip
    lines += ["Connection closed by 10.1.1.1 [preauth]", "Connection closed by 10.1.1.2 [preauth]"]
    text = pa.array(lines)
    templates, _ = parser.line_templates(parser.add_batch(text), text)
    out = [str(t) for t in templates.to_pylist()]
    assert all(template_regex(t).fullmatch(x) for t, x in zip(out, lines, strict=True))
    assert parser.stats.model_calls >= 1
    assert parser.stats.accepted + parser.stats.repaired + parser.stats.rejected == (
        parser.stats.model_calls)  # fmt: skip
