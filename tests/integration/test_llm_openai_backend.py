"""The OpenAI-compatible backend against a small chat-completions server of our own on
loopback (a real socket; never the internet): the request it sends, the key from the named
environment variable, every failure as a clear ModelError, and the parser end to end."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pyarrow as pa
import pytest

from logpipe.errors import ModelError, UsageError
from logpipe.parsing.llm import LLMParser, LLMParserConfig
from logpipe.parsing.llm_backends import Demonstration, OpenAIBackend, ParseRequest, make_backend
from logpipe.parsing.params import template_regex
from tests.netguard import no_network

__all__ = ["no_network"]

Reply = Callable[[dict[str, Any]], tuple[int, bytes]]


class ChatServer:
    """``POST /v1/chat/completions`` answered by ``reply(request JSON)``; records requests."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append((dict(self.headers.items()), body))
                if self.path != "/v1/chat/completions":
                    status, data = 404, b'{"error": "no such path"}'
                else:
                    status, data = server.reply(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def completion(content: str) -> tuple[int, bytes]:
    body = {"id": "x", "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"}]}  # fmt: skip
    return 200, json.dumps(body).encode()


def _generalise_user(body: dict[str, Any]) -> tuple[int, bytes]:
    """A model that knows user names are variables."""
    question = body["messages"][-1]["content"].splitlines()[0].removeprefix("Log: ")
    words = question.split()
    words = ["<*>" if i and words[i - 1] == "user" else w for i, w in enumerate(words)]
    words = ["<*>" if any(c.isdigit() for c in w) else w for w in words]
    return completion(" ".join(words))


REQUEST = ParseRequest(("session opened for user root",), "session opened for user root",
                       (Demonstration("user bob left", "user <*> left"),))  # fmt: skip


@pytest.fixture
def server() -> Iterator[ChatServer]:
    with ChatServer(_generalise_user) as s:
        yield s


def test_the_request_is_a_greedy_short_chat_with_the_key_from_the_named_variable(
    server: ChatServer, no_network: list[str]
) -> None:
    backend = OpenAIBackend(server.url, "tiny-model", api_key_env="MY_KEY",
                            environ={"MY_KEY": "sekret"})  # fmt: skip
    assert backend.propose(REQUEST) == "session opened for user <*>"
    headers, body = server.requests[0]
    assert headers["Authorization"] == "Bearer sekret"
    assert body["model"] == "tiny-model" and body["temperature"] == 0
    assert 0 < body["max_tokens"] <= 512
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert body["messages"][2]["content"] == "user <*> left"
    assert no_network == []


def test_no_key_variable_sends_no_authorization(server: ChatServer) -> None:
    OpenAIBackend(server.url, "m", api_key_env="UNSET_VAR", environ={}).propose(REQUEST)
    assert "Authorization" not in server.requests[0][0]


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (lambda b: (401, b'{"error": "bad key"}'), "HTTP 401 (check the key"),
        (lambda b: (500, b"internal"), "HTTP 500"),
        (lambda b: (200, b"not json"), "not an OpenAI chat completion reply"),
        (lambda b: (200, b'{"choices": []}'), "not an OpenAI chat completion reply"),
        (lambda b: (200, b'{"choices": [{"message": {"content": 7}}]}'), "not text"),
    ],
)
def test_failures_are_model_errors_that_say_what_happened(reply: Reply, message: str) -> None:
    with ChatServer(reply) as s, pytest.raises(ModelError, match=message.replace("(", r"\(")):
        OpenAIBackend(s.url, "m", environ={}).propose(REQUEST)


def test_an_unreachable_or_slow_endpoint_is_a_model_error_within_the_timeout() -> None:
    with socket.socket() as sock:  # a port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ModelError, match="cannot reach the endpoint"):
        OpenAIBackend(f"http://127.0.0.1:{port}/v1", "m", environ={}).propose(REQUEST)

    def slow(body: dict[str, Any]) -> tuple[int, bytes]:
        time.sleep(1.0)
        return completion("late")

    with ChatServer(slow) as s:
        started = time.perf_counter()
        with pytest.raises(ModelError):
            OpenAIBackend(s.url, "m", timeout_s=0.2, environ={}).propose(REQUEST)
        assert time.perf_counter() - started < 0.9


def test_bad_settings_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="http"):
        OpenAIBackend("ftp://x", "m")
    with pytest.raises(UsageError, match="--llm-base-url"):
        make_backend("openai", model="m")
    with pytest.raises(UsageError, match="unknown LLM backend"):
        make_backend("gpt5")


def test_the_parser_through_the_endpoint_merges_users_and_checks_answers(
    server: ChatServer,
) -> None:
    backend = make_backend("openai", base_url=server.url, model="m")
    parser = LLMParser(backend, config=LLMParserConfig(max_calls_per_second=0))
    lines = ["session opened for user root"] * 3 + ["session opened for user news",
             "disk sda full", "disk sdb full"]  # fmt: skip
    text = pa.array(lines)
    templates, events = parser.line_templates(parser.add_batch(text), text)
    out = [str(t) for t in templates.to_pylist()]
    assert out[:4] == ["session opened for user <*>"] * 4
    assert len(set(events.to_pylist()[:4])) == 1
    assert all(template_regex(t).fullmatch(x) for t, x in zip(out, lines, strict=True))
    assert parser.stats.model_calls == len(server.requests) >= 1
