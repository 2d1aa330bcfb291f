"""SmolLM2-135M as a log template proposer for the hybrid parser (``--parser llm``).

Light at import (no torch): :mod:`.prompt` and :mod:`.demos` are plain Python;
:mod:`.local` imports torch and transformers and is loaded only when a model call is due.
"""
