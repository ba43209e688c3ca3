"""Translation of user-facing CLI messages, selected by the locale.

Messages are marked with `_()` and looked up in the gettext catalog of the
`cluster` domain under `cluster/locale/`. The language comes from the usual
environment variables (`LANGUAGE`, `LC_ALL`, `LC_MESSAGES`, `LANG`); English is
the default and the fallback.

Node logs are not translated. A node translates only the errors of its
start-up, such as a DataFileError for a corrupt data file, because the CLI
prints them. After start-up it runs under `untranslated()`, because its
errors then go to its log.
"""

from __future__ import annotations

import contextlib
import gettext
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DOMAIN = "cluster"
LOCALE_DIR = Path(__file__).parent / "locale"

_translation = gettext.translation(DOMAIN, localedir=LOCALE_DIR, fallback=True)

# argparse translates its own words ("usage: ", "options", its error messages)
# with gettext.gettext, which reads the process-wide text domain. Pointing that
# domain at this catalog, which carries those messages too, translates them.
gettext.bindtextdomain(DOMAIN, LOCALE_DIR)
gettext.textdomain(DOMAIN)


def _(message: str) -> str:
    """Return `message` translated to the locale's language."""
    return _translation.gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """Return the translation of `singular` or `plural`, whichever the language uses for `count`."""
    return _translation.ngettext(singular, plural, count)


class _MessageFormatter(string.Formatter):
    """A str.format that writes the decimal separator of the catalog's language."""

    def format_field(self, value: Any, format_spec: str) -> str:
        text = format(value, format_spec)
        if isinstance(value, float):
            separator = decimal_separator()
            if separator != ".":
                text = text.replace(".", separator)
        return text


_formatter = _MessageFormatter()


def decimal_separator() -> str:
    """Return the decimal separator of the language messages are translated to: a comma for Portuguese."""
    language = _translation.info().get("language", "")
    return "," if language.startswith("pt") else "."


def format_message(message: str, **fields: Any) -> str:
    """Fill in `message` like str.format, writing floats with the language's decimal separator."""
    return _formatter.format(message, **fields)


def reload() -> None:
    """Read the locale from the environment again (for tests that change it)."""
    global _translation
    _translation = gettext.translation(DOMAIN, localedir=LOCALE_DIR, fallback=True)


@contextlib.contextmanager
def untranslated() -> Iterator[None]:
    """Make `_()` return the English message inside the block, in every thread, and restore the translation after."""
    global _translation
    saved = _translation
    _translation = gettext.NullTranslations()
    try:
        yield
    finally:
        _translation = saved
