"""Wording of operating-system, JSON and UTF-8 errors in the language of the CLI messages.

Python words these errors in English (`strerror`, `json.JSONDecodeError.msg`,
the codec message of `UnicodeDecodeError`), so a translated message that
embeds `str(error)` mixes languages and shows Python internals. The functions
here return the cause in the catalog's language; the caller's message adds
the value (path, flag, key) and the fix.
"""

from __future__ import annotations

import errno
import json
from typing import Any

from cluster.i18n import _

# The longest JSON text that `json_value_text` shows before it cuts the rest.
MAX_VALUE_CHARS = 60


def describe_os_error(error: OSError) -> str:
    """Return the cause of `error` in the language of the messages, as a phrase without a final period.

    The common errno values are translated. Any other falls back to
    `strerror`, which is English, and then to `str(error)`.
    """
    code = error.errno
    if code == errno.ENOENT:
        return _("no such file or directory")
    if code == errno.EISDIR:
        return _("is a directory")
    if code == errno.ENOTDIR:
        return _("a component of the path is not a directory")
    if code in (errno.EACCES, errno.EPERM):
        return _("permission denied")
    if code == errno.ECONNREFUSED:
        return _("connection refused, so nothing listens on that port")
    if code == errno.EADDRINUSE:
        return _("address already in use")
    if code == errno.ENOSPC:
        return _("no space left on the device")
    if code == errno.EROFS:
        return _("read-only file system")
    if code == errno.ETIMEDOUT:
        return _("connection timed out")
    return error.strerror or str(error) or type(error).__name__


# The messages of Python's json decoder (Python 3.11, json/decoder.py and
# json/scanner.py) that a damaged or hand-edited file most often produces.
# A message not listed here is shown as Python words it.
_JSON_MESSAGES = {
    "Expecting value": lambda: _("expected a value"),
    "Expecting property name enclosed in double quotes": lambda: _("expected a key in double quotes"),
    "Expecting ':' delimiter": lambda: _("expected ':' after a key"),
    "Expecting ',' delimiter": lambda: _("expected ',' between two items"),
    "Extra data": lambda: _("unexpected text after the JSON value"),
    "Unterminated string starting at": lambda: _("a string has no closing double quote"),
    "Invalid control character at": lambda: _("a string contains a control character such as a line break"),
}


def json_error_reason(error: json.JSONDecodeError) -> str:
    """Return why `error` stopped the JSON parser, without its position."""
    reason_of = _JSON_MESSAGES.get(error.msg)
    return reason_of() if reason_of is not None else error.msg


def describe_json_error(error: json.JSONDecodeError) -> str:
    """Return where and why `error` stopped the JSON parser: line, column and cause."""
    return _("invalid JSON at line {line}, column {column}: {reason}").format(
        line=error.lineno, column=error.colno, reason=json_error_reason(error))


def describe_unicode_error(error: UnicodeDecodeError) -> str:
    """Return the first byte of the decoded text that is not valid UTF-8, and its position counted from 1."""
    byte = error.object[error.start]
    return _("invalid byte 0x{byte:02x} at byte {position}").format(byte=byte, position=error.start + 1)


def json_value_text(value: Any) -> str:
    """Return `value` as JSON text (`null`, `true`, `"text"`), cut to MAX_VALUE_CHARS characters.

    Errors about a JSON file show a value as the file contains it, not as
    Python's repr (`None`, `True`, `'text'`).
    """
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 3] + "..."
    return text
