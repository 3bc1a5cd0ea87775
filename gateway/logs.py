"""Configure structlog for the daemons: JSON lines when stdout is not a tty, console otherwise.

Events are snake_case facts with key/values (``session_started mac=.. voucher_id=..``);
voucher codes and patrons' names are never logged. journald (or the lab's log file)
stores stdout.
"""

from __future__ import annotations

import logging
import sys

import structlog

__all__ = ["get_logger", "setup_logging", "warnings_to_stderr"]


def setup_logging(level: str = "info", *, json: bool | None = None) -> None:
    """Route structlog and stdlib logging to stdout, as JSON unless stdout is a terminal."""
    if json is None:
        json = not sys.stdout.isatty()
    numeric = getattr(logging, level.upper(), logging.INFO)
    processors: list = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    if json:
        processors.append(structlog.processors.format_exc_info)
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=numeric, stream=sys.stdout, format="%(name)s %(levelname)s %(message)s")


def warnings_to_stderr() -> dict:
    """Keep only warnings and errors, on stderr, for tools whose stdout is their output
    (``hotspotctl``, ``make demo``); return the previous configuration, to put back with
    ``structlog.configure(**previous)``."""
    previous = structlog.get_config()
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )
    return previous


def get_logger(name: str | None = None) -> structlog.typing.FilteringBoundLogger:
    """Return a (lazy) structlog logger bound with ``component=name``."""
    return structlog.get_logger(component=name) if name else structlog.get_logger()
