"""The grounded prompt: the question and the numbered passages (title, date, text), and the JSON schema the
answer must follow: statements, each with the passage numbers it rests on and a verbatim supporting quote."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.answering.compose import date_label
from service.retrieval import SearchResult

MAX_STATEMENTS = 4

SYSTEM = (
    "你是江门市及周边地区党建与基层治理政策资料的问答助手。只能依据用户给出的编号资料回答，不得使用资料以外的知识。"
    "回答用简体中文，写成 1 到 4 条陈述，每条一两句话。每条陈述必须给出它依据的资料编号 passages，"
    "以及从该资料中逐字复制的一句原文 quote（原样复制，不改一个字，不加省略号）：quote 必须是直接支持这条陈述的那句话，"
    "陈述中的数字、日期、地名和机构名都必须出现在 quote 所在的资料中。"
    "如果资料不能回答问题，answerable 填 false，statements 为空列表。只输出 JSON。"
)


def schema(n_passages: int) -> dict[str, Any]:
    """JSON schema of the answer; `text` comes first in each statement so a stream shows it first."""
    return {
        "type": "object",
        "properties": {
            "answerable": {"type": "boolean"},
            "statements": {
                "type": "array",
                "maxItems": MAX_STATEMENTS,
                "items": {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string"},
                        "passages": {"type": "array", "minItems": 1, "maxItems": 3,
                                     "items": {"type": "integer", "minimum": 1, "maximum": max(1, n_passages)}},
                        "quote": {"type": "string"},
                    },
                    "required": ["text", "passages", "quote"],
                },
            },
        },
        "required": ["answerable", "statements"],
    }


def passage_block(n: int, p: SearchResult, date: str) -> str:
    when = date_label(date)
    head = f"[{n}]《{p.title}》" + (f"（{when}）" if when else "")
    if p.section:
        head += " " + " > ".join(p.section)
    return f"{head}\n{p.text.strip()}"


def messages(question: str, passages: Sequence[SearchResult], dates: Sequence[str]) -> list[dict[str, str]]:
    blocks = "\n\n".join(passage_block(n, p, d) for n, (p, d) in enumerate(zip(passages, dates, strict=True), 1))
    user = (f"资料：\n{blocks}\n\n问题：{question}\n\n"
            "输出 JSON：answerable（资料能否回答），statements（陈述列表；每条含 text 陈述、passages 所依据的资料编号、"
            "quote 从该资料逐字复制的原句）。")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
