"""One OpenAI-compatible chat server (vLLM, llama.cpp, Ollama, a hosted Qwen/DeepSeek API), through the
`openai` package: a streamed completion under one deadline, failures turned into a fallback reason.

The answer is always streamed from the server, for HTTP callers who stream and for those who do not: the
deadline is then checked between tokens (a server that keeps talking cannot hold a request past it), and a
streamed and a non-streamed ask of the same question get the same answer.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

FALLBACK_REASONS = ("llm_not_configured", "hard_refusal", "llm_unavailable", "llm_timeout", "llm_rate_limited",
                    "llm_server_error", "llm_malformed", "llm_no_answer", "llm_unverified")


@dataclass(frozen=True)
class LLMConfig:
    base_url: str
    model: str = ""  # empty: the first model the server lists
    api_key: str = ""
    timeout_s: float = 60.0
    max_tokens: int = 512
    temperature: float = 0.0


class LLMFailure(Exception):
    """The call did not give an answer; `reason` is one of FALLBACK_REASONS."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def failure_reason(exc: BaseException) -> str:
    import openai

    if isinstance(exc, LLMFailure):
        return exc.reason
    if isinstance(exc, openai.APITimeoutError):  # before APIConnectionError, its base class
        return "llm_timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "llm_unavailable"
    if isinstance(exc, openai.RateLimitError):
        return "llm_rate_limited"
    if isinstance(exc, openai.APIStatusError) and exc.status_code >= 500:
        return "llm_server_error"
    return "llm_unavailable" if isinstance(exc, openai.APIError | OSError) else "llm_malformed"


@contextlib.contextmanager
def _as_failure() -> Iterator[None]:
    """Every error of a call to the server becomes an LLMFailure: a fallback, never a 500."""
    try:
        yield
    except LLMFailure:
        raise
    except Exception as exc:
        raise LLMFailure(failure_reason(exc), str(exc)[:300]) from exc


class LLMClient:
    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self._client: Any = None
        self._model = config.model
        self._schema_ok = True  # cleared when the server rejects json_schema response formats
        self._lock = threading.Lock()

    def _openai(self) -> Any:
        with self._lock:
            if self._client is None:
                import openai

                # retries would spend the deadline on a server that is down; the extractive answer is ready
                self._client = openai.OpenAI(base_url=self.config.base_url, api_key=self.config.api_key or "none",
                                             timeout=self.config.timeout_s, max_retries=0)
            return self._client

    def model(self) -> str:
        """The configured model, else the first the server lists (asked once); LLMFailure when it cannot say."""
        if not self._model:
            with _as_failure():
                models = self._openai().models.list()
            first = next(iter(models.data), None)
            if first is None:
                raise LLMFailure("llm_unavailable", "the server lists no model")
            self._model = first.id
        return self._model

    def stream(self, messages: list[dict[str, str]], schema: dict[str, Any], deadline: float) -> Iterator[str]:
        """Text deltas of one chat completion; LLMFailure when it fails or runs past `deadline`
        (time.monotonic())."""
        with _as_failure():
            yield from self._stream(messages, schema, deadline)

    def _stream(self, messages: list[dict[str, str]], schema: dict[str, Any], deadline: float) -> Iterator[str]:
        import openai

        left = deadline - time.monotonic()
        if left <= 0:
            raise LLMFailure("llm_timeout")
        client = self._openai().with_options(timeout=left)
        kwargs: dict[str, Any] = {"model": self.model(), "messages": messages, "stream": True,
                                  "temperature": self.config.temperature, "max_tokens": self.config.max_tokens}
        if self._schema_ok:
            kwargs["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "grounded_answer", "schema": schema, "strict": True}}
        try:
            response = client.chat.completions.create(**kwargs)
        except openai.BadRequestError:
            if not self._schema_ok:
                raise
            # a server without structured output: ask again without it and rely on the tolerant parser
            self._schema_ok = False
            kwargs.pop("response_format")
            response = client.chat.completions.create(**kwargs)
        with response:
            for chunk in response:
                if time.monotonic() > deadline:
                    raise LLMFailure("llm_timeout")
                if chunk.choices:
                    delta = chunk.choices[0].delta.content
                    if delta:
                        yield delta
