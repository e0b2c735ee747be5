"""Conversations: follow-up questions made standalone (rewrite.py by rule, condense.py by the LLM)."""

from service.conversation.rewrite import Resolution, Turn, resolve, rewrite

__all__ = ["Resolution", "Turn", "resolve", "rewrite"]
