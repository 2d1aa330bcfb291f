"""The chat prompt that asks for a log template (shared by the local model and endpoints).

Few-shot in the chat format the instruct model was tuned on: the system message states the
task in one sentence, each demonstration is a user turn (``Log: <line>``) answered by its
template, and the question lists the batch's lines the same way. Demonstrations hold one
line each, so the model sees the answer format many times before the question.
"""

from __future__ import annotations

from logpipe.parsing.llm_backends import ParseRequest

__all__ = ["SYSTEM_PROMPT", "chat_messages"]

SYSTEM_PROMPT = (
    "You turn log messages into templates. Replace each variable part (numbers, ids, "
    "addresses, paths, names of users and hosts, sizes, times) with <*> and keep every "
    "other character. All given lines share one template. Reply with the template only."
)


def chat_messages(request: ParseRequest) -> list[dict[str, str]]:
    """System message, demonstrations as solved turns, then the batch's lines."""
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    for demo in request.demonstrations:
        messages.append({"role": "user", "content": f"Log: {demo.line}"})
        messages.append({"role": "assistant", "content": demo.template})
    question = "\n".join(f"Log: {line}" for line in request.lines)
    messages.append({"role": "user", "content": question})
    return messages
