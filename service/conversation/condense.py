"""Generative mode: the configured LLM condenses a follow-up and the turns before it into one standalone
question. Whatever goes wrong (no server, timeout, malformed or implausible output) the rule-based rewrite
(rewrite.py) is used instead, and the reason is reported."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import Any

from service.conversation.rewrite import Resolution, Turn, resolve, standalone_history
from service.llm.client import LLMClient, LLMFailure

SYSTEM = (
    "你负责把多轮对话中的追问改写成一个可以单独理解的完整问题。保留追问的意思，"
    "从前面的对话中补全它省略的地方、条例或文件、年份和话题，把“它”“这个条例”“那……呢”等指代换成所指的内容。"
    "追问提到了新的地方或话题时，用新的替换旧的。追问本身已经完整时，原样返回。"
    "只输出 JSON：{\"question\": \"改写后的问题\"}。"
)
SCHEMA: dict[str, Any] = {"type": "object", "properties": {"question": {"type": "string"}},
                          "required": ["question"], "additionalProperties": False}
ANSWER_CHARS = 300  # of each earlier answer shown to the LLM
_CJK = re.compile(r"[\u4e00-\u9fff]")


def messages(question: str, history: Sequence[Turn]) -> list[dict[str, str]]:
    lines = []
    for i, t in enumerate(history, 1):
        lines.append(f"第{i}轮问：{t.resolved_question or t.question}")
        if t.answer:
            lines.append(f"第{i}轮答：{t.answer[:ANSWER_CHARS]}")
    lines.append(f"追问：{question}")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


def _plausible(text: str, question: str, max_chars: int) -> bool:
    """One question in Chinese, not much longer than a question may be."""
    return bool(text) and "\n" not in text and len(text) <= max_chars and len(_CJK.findall(text)) >= 2 and (
        len(text) >= len(question.strip()) // 2)


def condense(client: LLMClient, question: str, history: Sequence[Turn], *, timeout_s: float,
             max_chars: int = 500) -> Resolution:
    """The LLM's standalone question; the rules' on any failure (fallback_reason says why)."""
    if not history:
        return resolve(question, history)
    try:
        deadline = time.monotonic() + timeout_s
        raw = "".join(client.stream(messages(question, history), SCHEMA, deadline))
        text = raw.strip()
        if text.startswith("```"):
            text = text.strip("`").removeprefix("json").strip()
        value = json.loads(text).get("question", "") if text.startswith("{") else text
        value = str(value).strip()
    except LLMFailure as exc:
        return _fallback(question, history, exc.reason)
    except (ValueError, AttributeError):
        return _fallback(question, history, "llm_malformed")
    if not _plausible(value, question, max_chars):
        return _fallback(question, history, "llm_malformed")
    return Resolution(question.strip(), value, "llm", context=standalone_history(history))


def _fallback(question: str, history: Sequence[Turn], reason: str) -> Resolution:
    r = resolve(question, history)
    return Resolution(r.question, r.resolved, r.method, r.carried, reason, r.context)
