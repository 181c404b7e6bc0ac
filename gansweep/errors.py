"""The one base class for errors a user can fix: the CLI prints their message, not a traceback."""


class GansweepError(Exception):
    """Bad input or missing resources; the message says what, where, and what is allowed."""
