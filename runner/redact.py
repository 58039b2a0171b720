"""Passwords out of every message, and names made safe to print on one line.

A database URL or libpq DSN can reach a message in many ways: libpq's "invalid dsn" error
quotes the whole connection string, SQLAlchemy quotes a URL it cannot parse, and an
exception's text can travel into ``status``, ``status --json``, the run history, logs,
alerts and the dashboard. Every such message goes through ``redact``; the CLI also installs
``RedactingFormatter`` on the log handler, so no log line carries a password either.

Hand-written because no library covers it: libpq parses DSNs but does not mask them in its
own errors, and SQLAlchemy's ``URL.render_as_string(hide_password=True)`` needs a URL it can
parse, which a malformed one is not. The patterns below are deliberately broad: anything
between ``scheme://user:`` and the last ``@`` before the host, and the value of any
``password=`` key (query string or key/value DSN, quoted or not).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from pathlib import PurePath

MASK = "***"

# scheme://user:secret@host: the secret may itself hold ':' or '@' (it runs to the last '@'
# before the next white space, quote or slash-free host part).
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/?#@\s'\"]*:)"
                           r"(?P<secret>[^\s'\"]*)(?P<tail>@)", re.IGNORECASE)
# password=secret, password = 'secret with spaces', ?password=secret&..., PGPASSWORD=...
_KEY_PASSWORD = re.compile(
    r"(?P<head>\b(?:pg)?pass(?:word)?\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|\"[^\"]*\"|[^\s&;'\"]*)",
    re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with every password of a URL or DSN in it replaced by ``***``."""
    if not text or ("pass" not in text.lower() and "@" not in text):
        return text
    text = _URL_PASSWORD.sub(lambda m: m["head"] + MASK + m["tail"], text)
    return _KEY_PASSWORD.sub(lambda m: m["head"] + MASK, text)


def printable(name: str) -> str:
    """A name from the file system as one printable line: bytes that are not UTF-8 (kept by
    Python as surrogates) become ``\\xNN``, control characters ``\\n``, ``\\t``, ``\\xNN``."""
    out = []
    for char in name:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for an undecodable byte
            out.append(f"\\x{code - 0xDC00:02x}")
        elif char == "\\":
            out.append("\\\\")
        elif unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp"):
            out.append(char.encode("unicode_escape").decode("ascii") if code < 0x10000
                       else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


def is_printable(name: str) -> bool:
    """True when ``printable(name)`` would change nothing but backslashes."""
    return printable(name) == name.replace("\\", "\\\\")


class RedactingFormatter(logging.Formatter):
    """A log formatter whose output holds no password (message, arguments and traceback
    alike) and whose records stay on their own lines: line breaks inside string arguments
    are escaped, so a batch named ``x\\nERROR forged`` cannot forge a log line."""

    def format(self, record: logging.LogRecord) -> str:
        if isinstance(record.args, tuple):
            record.args = tuple(_one_line(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _one_line(arg) for key, arg in record.args.items()}
        return redact(super().format(record))


def _one_line(arg: object) -> object:
    if isinstance(arg, str | BaseException | PurePath):
        return str(arg).replace("\r", "\\r").replace("\n", "\\n")
    return arg
