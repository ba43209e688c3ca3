"""Extract and compile the gettext catalog of the `cluster` command's messages.

    python tools/i18n.py extract   # src/cluster/**/*.py -> src/cluster/locale/cluster.pot
    python tools/i18n.py update    # merge the template into each locale's cluster.po
    python tools/i18n.py compile   # each locale's cluster.po -> cluster.mo

Messages are the string literals passed to `_()` and `ngettext()` (see
`cluster.i18n`).
Extraction and compilation use Babel; the output is sorted and carries no
creation date, so running a step twice writes the same bytes.
"""

from __future__ import annotations

import argparse
import datetime
import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from babel.messages.catalog import Catalog

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "cluster"
LOCALE_DIR = PACKAGE / "locale"
DOMAIN = "cluster"
TEMPLATE = LOCALE_DIR / f"{DOMAIN}.pot"
PROJECT = "cluster-sync"
VERSION = "0.1.0"
REPRODUCIBLE_DATE = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)

# Messages of Python's argparse that `cluster` can print: its help headings and
# its usage errors. argparse looks them up in the process-wide text domain,
# which `cluster.i18n` points at this catalog. The texts are those of
# Python 3.11's argparse; a later Python that words one differently prints
# that one in English.
HEADER = """\
# Messages of the `cluster` command.
# Regenerate with `python tools/i18n.py extract`; see that script.
#"""

ARGPARSE_MESSAGES = (
    "usage: ",
    "positional arguments",
    "options",
    "show this help message and exit",
    "%(prog)s: error: %(message)s\n",
    "argument %(argument_name)s: %(message)s",
    "invalid %(type)s value: %(value)r",
    "invalid choice: %(value)r (choose from %(choices)s)",
    "the following arguments are required: %s",
    "unrecognized arguments: %s",
    "expected one argument",
    "ambiguous option: %(option)s could match %(matches)s",
)


def extract() -> Catalog:
    """Return a catalog of every `_()` and `ngettext()` message in the package's Python files, and argparse's."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_dir

    catalog = Catalog(project=PROJECT, version=VERSION, copyright_holder="the cluster-sync authors",
                      msgid_bugs_address="", charset="utf-8", header_comment=HEADER)
    found = extract_from_dir(
        str(PACKAGE),
        method_map=[("**.py", "python")],
        keywords={"_": None, "ngettext": (1, 2)},
        comment_tags=("Translators:",),
        strip_comment_tags=True,
    )
    for filename, lineno, message, comments, context in found:
        catalog.add(message, None, [(f"src/cluster/{filename}", lineno)], auto_comments=comments, context=context)
    for message in ARGPARSE_MESSAGES:
        catalog.add(message, None, [("argparse", 0)], flags=("python-format",))
    return catalog


def write_catalog(catalog: Catalog, path: Path) -> None:
    """Write `catalog` as a .po or .pot file without date headers, so that the output is reproducible.

    Messages that the source no longer uses are left out, because no code can show them.
    """
    from babel.messages.pofile import write_po

    buffer = io.BytesIO()
    write_po(buffer, catalog, width=100, sort_output=True, omit_header=False, ignore_obsolete=True)
    lines = buffer.getvalue().split(b"\n")
    dropped = (b'"POT-Creation-Date:', b'"PO-Revision-Date:', b'"Report-Msgid-Bugs-To:')
    kept = [line for line in lines if not line.startswith(dropped)]
    path.write_bytes(b"\n".join(kept))


def catalog_paths() -> list[Path]:
    return sorted(LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def read_catalog(path: Path) -> Catalog:
    from babel.messages.pofile import read_po

    with path.open("rb") as file:
        return read_po(file, domain=DOMAIN)


def compile_catalog(catalog: Catalog) -> bytes:
    """Return the .mo bytes for `catalog`, leaving out fuzzy and untranslated messages."""
    from babel.messages.mofile import write_mo

    # Babel writes both dates into the .mo header and defaults them to now.
    # A fixed date (the Unix epoch) makes the same .po compile to the same bytes.
    catalog.creation_date = catalog.revision_date = REPRODUCIBLE_DATE
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    return buffer.getvalue()


def command_extract() -> int:
    catalog = extract()
    write_catalog(catalog, TEMPLATE)
    print(f"wrote {TEMPLATE.relative_to(ROOT)}: {len(catalog)} messages")
    return 0


def command_update() -> int:
    template = read_catalog(TEMPLATE)
    for path in catalog_paths():
        catalog = read_catalog(path)
        catalog.update(template, no_fuzzy_matching=False)
        write_catalog(catalog, path)
        untranslated = [message.id for message in catalog if message.id and not message.string]
        fuzzy = [message.id for message in catalog if message.id and message.fuzzy]
        print(f"updated {path.relative_to(ROOT)}: {len(untranslated)} untranslated, {len(fuzzy)} fuzzy, "
              f"{len(catalog.obsolete)} dropped as no longer used")
    return 0


def command_compile() -> int:
    for path in catalog_paths():
        catalog = read_catalog(path)
        target = path.with_suffix(".mo")
        target.write_bytes(compile_catalog(catalog))
        print(f"wrote {target.relative_to(ROOT)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Extract, update and compile the cluster message catalogs.")
    parser.add_argument("step", choices=("extract", "update", "compile"),
                        help="extract: write the .pot template; update: merge it into each .po; "
                             "compile: write each .mo")
    args = parser.parse_args(argv)
    steps = {"extract": command_extract, "update": command_update, "compile": command_compile}
    return steps[args.step]()


if __name__ == "__main__":
    sys.exit(main())
