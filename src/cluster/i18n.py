"""Translation of user-facing CLI messages, selected by the locale.

Messages are marked with `_()` and looked up in the gettext catalog of the
`cluster` domain under `cluster/locale/`. The language comes from the usual
environment variables (`LANGUAGE`, `LC_ALL`, `LC_MESSAGES`, `LANG`); English is
the default and the fallback. Node logs are not translated.
"""

from __future__ import annotations

import gettext
from pathlib import Path

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


def reload() -> None:
    """Read the locale from the environment again (for tests that change it)."""
    global _translation
    _translation = gettext.translation(DOMAIN, localedir=LOCALE_DIR, fallback=True)
