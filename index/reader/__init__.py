"""The extractive reader (span + no-answer score): training data, training, and the shipped weights.

Training starts from the multilingual-e5-small folder that `policyqa model prepare` writes; the runtime
reader that answers questions lives in the service stage.
"""
