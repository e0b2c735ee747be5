"""Log setup shared by `policyqa serve`, the app factory and the rebuild child."""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format=LOG_FORMAT, stream=sys.stderr)
    logging.getLogger("policyqa").setLevel(level.upper())
