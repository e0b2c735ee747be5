"""The one error type every stage raises for bad input: a machine code and a message in Chinese and English."""

from __future__ import annotations


class BilingualError(ValueError):
    def __init__(self, code: str, message_zh: str, message_en: str) -> None:
        super().__init__(f"{message_en} / {message_zh}")
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en
