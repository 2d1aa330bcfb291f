"""Who proposes a template for a batch of log lines: the local model or a chat endpoint.

A backend is anything with ``propose(request) -> str``: given a few lines of one group,
the miner's statistical template of them and some solved demonstrations, it returns its
template as text. What it returns is never trusted: :mod:`logpipe.parsing.template_check`
checks (and repairs, or rejects) every answer before the parser uses it. A backend that
fails raises :class:`~logpipe.errors.ModelError`; the parser counts it and keeps the
statistical template, so a dead endpoint slows nothing and loses nothing.

* ``local`` (default): SmolLM2-135M-Instruct on this machine
  (:mod:`logpipe.models.llm_parser.local`, loaded on the first call so a warm cache never
  loads it at all). It only decides which constant tokens of the statistical template
  become variables. By default (``local_mode="probe"``) a head trained on labelled templates
  of other systems reads that decision from the model's hidden states
  (:mod:`logpipe.models.llm_parser.probe`); the untuned model's own preference
  (``score`` mode, ``local_margin`` nats) lowered accuracy at every margin measured and is
  kept for experiments; ``off`` runs the parser on its cache and merges alone;
* ``openai``: any OpenAI-compatible ``/chat/completions`` endpoint (a hosted model, vLLM,
  llama.cpp's server, Ollama...), through the standard library's HTTP client only. The key
  is read from the environment variable the configuration names, never from a file or a
  flag (it would end up in shell history and process lists).
"""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from logpipe.errors import ModelError, UsageError

__all__ = [
    "BACKENDS",
    "DEFAULT_API_KEY_ENV",
    "LOCAL_MODES",
    "Demonstration",
    "LazyBackend",
    "OpenAIBackend",
    "ParseRequest",
    "TemplateBackend",
    "make_backend",
]

BACKENDS = ("local", "openai")
#: How the local model is asked (see :func:`make_backend`).
LOCAL_MODES = ("probe", "score", "off")
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
#: Reply cap for a chat endpoint: a template is one log line.
MAX_REPLY_TOKENS = 256


@dataclass(frozen=True)
class Demonstration:
    """A solved example shown to the model: a log line and its template."""

    line: str
    template: str


@dataclass(frozen=True)
class ParseRequest:
    """What a backend is asked: a small batch of diverse lines of one group, the miner's
    template of them, and demonstrations retrieved for them."""

    lines: tuple[str, ...]
    statistical: str
    demonstrations: tuple[Demonstration, ...] = ()


class TemplateBackend(Protocol):
    """Proposes a template for a batch of lines (raise ``ModelError`` when it cannot)."""

    name: str

    def propose(self, request: ParseRequest) -> str: ...


class LazyBackend:
    """A backend built on its first call: the local model costs seconds to load, which a
    run whose every group hits the cache should never pay. Thread-safe."""

    def __init__(self, name: str, factory: Callable[[], TemplateBackend]) -> None:
        self.name = name
        self._factory = factory
        self._backend: TemplateBackend | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._backend is not None

    def propose(self, request: ParseRequest) -> str:
        with self._lock:
            if self._backend is None:
                self._backend = self._factory()
        return self._backend.propose(request)


class OpenAIBackend:
    """An OpenAI-compatible chat endpoint: ``POST {base_url}/chat/completions``.

    Greedy (``temperature`` 0) and short (``max_tokens``); a bearer token from the
    environment variable ``api_key_env`` when it is set (local servers need none).
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = DEFAULT_API_KEY_ENV,
        timeout_s: float = 30.0,
        environ: dict[str, str] | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise UsageError(f"--llm-base-url {base_url!r}: give an http:// or https:// URL, "
                             "e.g. http://127.0.0.1:8000/v1")  # fmt: skip
        if not model:
            raise UsageError("--llm-model: name the model the endpoint should run")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.timeout_s = timeout_s
        env = os.environ if environ is None else environ
        self._key = env.get(api_key_env) or None

    def _body(self, request: ParseRequest) -> bytes:
        from logpipe.models.llm_parser.prompt import chat_messages  # noqa: PLC0415

        payload = {
            "model": self.model,
            "messages": chat_messages(request),
            "temperature": 0,
            "max_tokens": MAX_REPLY_TOKENS,
        }
        return json.dumps(payload).encode("utf-8")

    def propose(self, request: ParseRequest) -> str:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        req = urllib.request.Request(self.url, self._body(request), headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read(300).decode("utf-8", "replace").strip()
            hint = " (check the key's environment variable)" if exc.code in (401, 403) else ""
            raise ModelError(f"{self.url}: HTTP {exc.code}{hint}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ModelError(f"{self.url}: cannot reach the endpoint ({reason}); check "
                             "--llm-base-url and that the server runs") from None  # fmt: skip
        return _reply_text(self.url, raw)


def _reply_text(url: str, raw: bytes) -> str:
    try:
        data: Any = json.loads(raw)
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise ModelError(f"{url}: not an OpenAI chat completion reply: {raw[:200]!r}") from None
    if not isinstance(content, str):
        raise ModelError(f"{url}: the reply's message content is not text")
    return content


def make_backend(
    kind: str,
    *,
    base_url: str | None = None,
    model: str | None = None,
    api_key_env: str = DEFAULT_API_KEY_ENV,
    timeout_s: float = 30.0,
    local_mode: str = "probe",
    local_margin: float | None = None,
) -> TemplateBackend | None:
    """The backend ``kind`` (``local`` or ``openai``), loaded lazily where that costs.

    ``local`` asks the model in ``local_mode``: ``probe`` (default, the trained variable
    probe), ``score`` (needs ``local_margin``; a margin alone also selects it, an infinite
    one means never adopt) or ``off`` (None: the parser runs on its cache and merges)."""
    if kind == "local":
        if local_mode not in LOCAL_MODES:
            raise UsageError(f"unknown local mode {local_mode!r}; choose one of "
                             f"{', '.join(LOCAL_MODES)}")  # fmt: skip
        if local_margin is not None:
            local_mode = "score"
        if local_mode == "off" or local_margin == float("inf"):
            return None
        if local_mode == "score" and local_margin is None:
            raise UsageError("the local score mode needs a margin (--llm-local-margin NATS)")
        mode, margin = local_mode, local_margin or 0.0

        def build() -> TemplateBackend:
            from logpipe.models.llm_parser.local import LocalBackend  # noqa: PLC0415 - torch

            backend: TemplateBackend = LocalBackend.load(mode=mode, margin=margin)
            return backend

        return LazyBackend("local", build)
    if kind == "openai":
        if not base_url or not model:
            raise UsageError("--llm-backend openai needs --llm-base-url and --llm-model")
        return OpenAIBackend(base_url, model, api_key_env=api_key_env, timeout_s=timeout_s)
    raise UsageError(f"unknown LLM backend {kind!r}; choose one of {', '.join(BACKENDS)}")
