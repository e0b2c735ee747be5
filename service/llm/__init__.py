"""Generated answers from an OpenAI-compatible LLM, every statement checked against the cited passages.

prompt.py numbers the passages and asks for JSON statements with verbatim quotes; client.py talks to the
server (the `openai` package, streamed, under one deadline); parse.py reads the model's output, whole or
partial; verify.py keeps the statements whose quote is in the cited passage and whose numbers, dates and
names are too; generate.py runs it all behind the extractive answer, which stays the fallback.
"""
