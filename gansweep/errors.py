"""The one base class for errors a user can fix (the CLI prints their message, not a traceback), and
the redaction every printed message goes through."""

import re

EXIT_USAGE = 2
"""The exit status of a command that stopped on a ``GansweepError`` (argparse uses 2 for bad usage too)."""
_CREDENTIALS = re.compile(r"(\b[a-z][\w+.-]*://[^\s:/@]+):[^\s@]+@")


class GansweepError(Exception):
    """Bad input or missing resources; the message says what, where, and what is allowed."""


def redact(text: str) -> str:
    """Replaces the password of every ``scheme://user:password@host`` in ``text`` by ``***``: for
    URLs, and for error messages that quote them.

    >>> redact("cannot open postgresql://bob:s3cret@db:5432/optuna")
    'cannot open postgresql://bob:***@db:5432/optuna'
    """
    return _CREDENTIALS.sub(r"\1:***@", text)
