"""The one base class for errors a user can fix (the CLI prints their message, not a traceback), and
the redaction every printed message goes through."""

import re
from urllib.parse import unquote

EXIT_USAGE = 2
"""The exit status of a command that stopped on a ``GansweepError`` (argparse uses 2 for bad usage too)."""
# `scheme://user:password@`: the password runs on to the LAST `@` of the URL, as an unencoded `@` may be
# part of it (and a user name may hold one too: `user@server` on Azure). `\S` and `(?!://)` keep the
# match inside one URL: it never crosses whitespace, nor the `://` of a URL that follows without a space.
_USERINFO = re.compile(r"(\b[a-z][\w+.-]*://[^\s:/]*):(?:(?!://)\S)+@", re.IGNORECASE)
# `?password=...`, `&token=...`, `&X-Amz-Signature=...`: a credential-like query parameter (its name, or
# the last `_`/`.`/`-` part of it), up to the next parameter, a quote, or the punctuation that ends a
# message's URL (`...?password=***: cannot open`). Other parameters (`sslmode=`) stay visible.
# Any name ending in password/passwd/pwd counts (libpq's `sslpassword`), `pw` too, and so does one
# percent-encoded inside another parameter (ODBC's `odbc_connect=...%3BPWD%3D...`).
_SECRET_PARAMETER = re.compile(
    r"((?:[?&#](?:[\w.-]*[_.-])?(?:pass|token|apikey|key|secret|sig|signature|auth)|[?&#][\w.-]*(?:password|passwd|pwd)"
    r"|[?&#]pw|(?:%3B|%26|%3F)[\w.-]*(?:password|passwd|pwd))(?:=|%3D))[^\s&'\"]*[^\s&'\":,;.)]",
    re.IGNORECASE,
)


# The parts a URL parser may split a password into when it holds an unencoded `@`, `:`, `/`, `?` or `#`
# (SQLAlchemy reads `bob:p@ss:HUNTER2@h:1` as port 'HUNTER2@h:1' and says so).
_PASSWORD_SEPARATORS = re.compile(r"[@:/?#\s]+")


class GansweepError(Exception):
    """Bad input or missing resources; the message says what, where, and what is allowed."""


def redact(text: str, *urls: str | None) -> str:
    """Replaces by ``***`` the password of every ``scheme://user:password@host`` in ``text``, and the
    value of every credential-like query parameter (``password``, ``token``, ``api_key``, ``sig``...):
    for URLs, and for error messages that quote them.

    Within a URL the password ends at its last ``@``: that hides a password holding an unencoded ``@``,
    at the cost of hiding more than the password where the path or query holds an ``@`` too. What it
    cannot hide alone is driver text that quotes part of such a password outside a URL: with the password
    ``SE@CRET``, SQLAlchemy takes ``CRET@127.0.0.1`` for the host, and an error may name that host. Given
    the ``urls`` the text is about, it also hides, wherever they stand as a word of their own, their
    passwords (plain and percent-decoded), every piece of them between ``@ : / ? #``, and the values
    of their credential-like query parameters: what a driver says about a URL never shows its password.

    >>> redact("cannot open postgresql://bob:s3cret@db:5432/optuna")
    'cannot open postgresql://bob:***@db:5432/optuna'
    >>> redact("postgresql://u:SE@CRET@127.0.0.1:1/db?sslmode=require&password=SECRET&x=1")
    'postgresql://u:***@127.0.0.1:1/db?sslmode=require&password=***&x=1'
    >>> redact("cannot open (invalid port 'HUNTER2@127.0.0.1:1')", "postgresql://bob:p@ss:HUNTER2@127.0.0.1:1/db")
    "cannot open (invalid port '***@127.0.0.1:1')"
    >>> redact("x postgresql://u@h/db?sslpassword=S1&pw=S2 and mssql+pyodbc:///?odbc_connect=UID%3Du%3BPWD%3DS3")
    'x postgresql://u@h/db?sslpassword=***&pw=*** and mssql+pyodbc:///?odbc_connect=UID%3Du%3BPWD%3D***'
    >>> redact("--storage postgresql://bob:pw SECRET@127.0.0.1:1/db: no", "postgresql://bob:pw SECRET@127.0.0.1:1/db")
    '--storage postgresql://bob:***@127.0.0.1:1/db: no'
    """
    text = _SECRET_PARAMETER.sub(r"\1***", _USERINFO.sub(r"\1:***@", text))
    for secret in sorted(_secrets(urls), key=len, reverse=True):  # the whole password before its pieces
        text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", "***", text)
    return text


def _secrets(urls: tuple[str | None, ...]) -> set[str]:
    """The passwords of ``urls`` (plain and percent-decoded), their pieces, and their query credentials."""
    found: set[str] = set()
    for url in filter(None, urls):
        # One URL: its password may hold a space or a tab, which a URL in running text cannot.
        passwords = [m.group(1) for m in re.finditer(r"://[^\s:/]*:((?:(?!://)[^\n])+)@", url)]
        passwords += [m.group(0)[len(m.group(1)) :] for m in _SECRET_PARAMETER.finditer(url)]
        for password in passwords:
            for form in (password, unquote(password)):
                found |= {form, *_PASSWORD_SEPARATORS.split(form)}
    return found - {"", "***"}
