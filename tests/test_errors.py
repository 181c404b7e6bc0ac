"""redact() hides every credential that a printed URL can carry, and nothing else."""

from __future__ import annotations

import doctest

import pytest

import gansweep.errors
from gansweep.errors import redact

HIDDEN = [
    # user:password@
    ("cannot open postgresql://bob:s3cret@db:5432/optuna", "cannot open postgresql://bob:***@db:5432/optuna"),
    ("mysql+pymysql://u:p@h/db", "mysql+pymysql://u:***@h/db"),
    ("postgresql+psycopg://bob:s3cret@db/x", "postgresql+psycopg://bob:***@db/x"),
    ("https://user:tok@host", "https://user:***@host"),
    ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
    ("postgresql://bob@server:s3cret@db/x", "postgresql://bob@server:***@db/x"),  # Azure's user@server
    # a password holding an unencoded @, : or /
    ("postgresql://u:SE@CRET@127.0.0.1:1/db", "postgresql://u:***@127.0.0.1:1/db"),
    ("postgresql://u:a@b@c@db/x", "postgresql://u:***@db/x"),
    ("postgresql://u:a:b/c?d@db/x", "postgresql://u:***@db/x"),
    # credential-like query parameters; the others stay
    ("postgresql://u@host/db?password=SECRET", "postgresql://u@host/db?password=***"),
    (
        "postgresql://u@host/db?sslmode=require&password=SECRET&x=1",
        "postgresql://u@host/db?sslmode=require&password=***&x=1",
    ),
    ("http://127.0.0.1:5000/?token=SECRET", "http://127.0.0.1:5000/?token=***"),
    (
        "https://h/a?access_token=S&api_key=S&apikey=S&key=S",
        "https://h/a?access_token=***&api_key=***&apikey=***&key=***",
    ),
    ("https://h/a?secret=S&sig=S&signature=S&auth=S", "https://h/a?secret=***&sig=***&signature=***&auth=***"),
    ("https://h/a?pass=S&pwd=S&PassWord=S&TOKEN=S", "https://h/a?pass=***&pwd=***&PassWord=***&TOKEN=***"),
    ("https://b.s3.amazonaws.com/k?X-Amz-Signature=S&x=1", "https://b.s3.amazonaws.com/k?X-Amz-Signature=***&x=1"),
    ("https://h/cb#access_token=S&state=1", "https://h/cb#access_token=***&state=1"),
    # both at once, twice in one message, and around driver text
    (
        "postgresql://u:SE@CRET@db/x?password=P",
        "postgresql://u:***@db/x?password=***",
    ),
    (
        "copy postgresql://a:p1@h1/x to mysql://b:p2@h2/y",
        "copy postgresql://a:***@h1/x to mysql://b:***@h2/y",
    ),
    (
        "'postgresql://a:p1@h1/x','mysql://b:p2@h2/y'",
        "'postgresql://a:***@h1/x','mysql://b:***@h2/y'",
    ),
    (
        '--storage postgresql://u:SE@CRET@127.0.0.1:1/db: cannot open (connection to server at "127.0.0.1", port 1 failed)',
        '--storage postgresql://u:***@127.0.0.1:1/db: cannot open (connection to server at "127.0.0.1", port 1 failed)',
    ),
    (
        "--storage postgresql://u:SE@CRET@db/x: cannot open (failed to resolve host 'CRET@db')",
        "--storage postgresql://u:***@db/x: cannot open (failed to resolve host 'CRET@db')",  # the documented limit
    ),
    # what hiding up to the last @, and up to the next & or space, costs: more than the secret goes
    ("postgresql://u:p@db/x?application_name=me@corp", "postgresql://u:***@corp"),
    ("http://h:5000/x@y", "http://h:***@y"),
    ("'http://h/?token=S' is unreachable", "'http://h/?token=***' is unreachable"),  # a quote ends the value
    (
        "--storage postgresql://u@h/db?password=S: cannot open",
        "--storage postgresql://u@h/db?password=***: cannot open",
    ),
    ("postgresql://u@h/db?password=a:b.c", "postgresql://u@h/db?password=***"),
]

UNCHANGED = [
    "plain text: 3 trials failed",
    "http://127.0.0.1:5000/#/experiments/1",
    "postgresql://db:5432/optuna?sslmode=require&application_name=gansweep",
    "postgresql://bob@db/x",
    "postgresql://bob@db:5432/x",
    "postgresql://u:@db/x",
    "https://h/a?password=&sslkey=/etc/k.pem&monkey=1",
    "write to bob@example.com: http://h:80/x is down",
    "copy http://h1:5000/ to postgresql://bob@h2/x",
    "http://h1:5000/,postgresql://bob@h2/x",
    'connection to server at "127.0.0.1", port 1 failed: user: bob@db: bad',
]


@pytest.mark.parametrize(("text", "expected"), HIDDEN)
def test_redact_hides_credentials(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(expected) == expected  # a message redacted twice (a store's, then the CLI's) stays the same


@pytest.mark.parametrize("text", UNCHANGED)
def test_redact_leaves_the_rest(text: str) -> None:
    assert redact(text) == text


ABOUT = [
    # (driver text, the URL it is about, as shown): the pieces a parser split the password into are hidden
    (
        "invalid literal for int() with base 10: 'HUNTER2@127.0.0.1:1'",
        "postgresql://bob:p@ss:HUNTER2@127.0.0.1:1/db",
        "invalid literal for int() with base 10: '***@127.0.0.1:1'",
    ),
    ("failed to resolve host 'CRET@db'", "postgresql://u:SE@CRET@db/x", "failed to resolve host '***@db'"),
    ("password 'p@ss' rejected", "postgresql://u:p%40ss@db/x", "password '***' rejected"),  # percent-decoded
    ("bad token SECRET", "http://h/?token=SECRET", "bad token ***"),
    ("a bypass of class", "postgresql://u:pass@db/x", "a bypass of class"),  # inside words: not the password
    ("nothing to hide", None, "nothing to hide"),
]


@pytest.mark.parametrize(("text", "url", "expected"), ABOUT)
def test_redact_hides_what_a_driver_quotes_of_the_urls_password(text: str, url, expected: str) -> None:
    assert redact(text, url) == expected


def test_redact_docstring_examples() -> None:
    assert doctest.testmod(gansweep.errors).failed == 0
