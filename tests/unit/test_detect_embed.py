"""MiniLM template embeddings: offline loading, our own BERT forward, caching, determinism."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from logpipe.detect.embed import EMBED_DIM, TemplateEmbedder, load_minilm, template_text
from logpipe.errors import InputError


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_loads_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> socket.socket:
        raise AssertionError("the embedder tried to open a socket")

    load_minilm.cache_clear()
    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    model, tokenizer = load_minilm()
    assert model.cfg.num_hidden_layers == 6 and model.cfg.hidden_size == EMBED_DIM
    assert tokenizer.encode("hello").ids[0] == 101  # [CLS]
    vectors = TemplateEmbedder().embed(["Connection closed by <*>"])
    assert vectors.shape == (1, EMBED_DIM)


def test_similar_templates_are_closer_than_unrelated_ones() -> None:
    texts = [
        "Accepted password for <*> from <*> port <*> ssh2",
        "Failed password for <*> from <*> port <*> ssh2",
        "Received block <*> of size <*> from <*>",
        "PacketResponder <*> for block <*> terminating",
        "instruction cache parity error corrected",
    ]
    v = TemplateEmbedder().embed(texts)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    sims = v @ v.T
    assert sims[0, 1] > 0.8
    assert sims[0, 1] > max(sims[0, 2], sims[0, 3], sims[0, 4]) + 0.3
    assert sims[2, 3] > sims[2, 4]  # two block events are closer than block vs cache parity


def test_vectors_do_not_depend_on_the_batch_and_are_cached() -> None:
    texts = [
        f"worker {i} finished task in <*> ms" if i % 2 else f"queue {i} <*> full" for i in range(20)
    ]
    together = TemplateEmbedder().embed(texts)
    alone = np.stack([TemplateEmbedder().embed([t])[0] for t in texts[:5]])
    np.testing.assert_array_equal(together[:5], alone)  # bit-identical
    embedder = TemplateEmbedder()
    embedder.embed(texts[:3])
    embedder.embed(texts[:3] + texts[:3])
    assert embedder.computed == 3
    assert embedder.embed([]).shape == (0, EMBED_DIM)


def test_template_text_keeps_one_marker_per_run_of_slots() -> None:
    assert template_text("src: <*>:<*> dest <*>") == "src: *:* dest *"
    assert template_text("<*> <*> done") == "* done"


def test_missing_model_files_are_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="MiniLM model file missing"):
        load_minilm(str(tmp_path))
