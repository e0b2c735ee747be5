"""Answering: a trained reader finds the answer span in the retrieved passages (candidates), filters keep
what the question pins down (filters), the answer cites the sentence that holds it (compose), and refusals
follow a confidence model fitted on labelled questions (calibration)."""

from service.answering.answerer import Answer, Answerer
from service.answering.calibration import Thresholds
from service.answering.compose import Citation, CitationError, verify_citation

__all__ = ["Answer", "Answerer", "Citation", "CitationError", "Thresholds", "verify_citation"]
