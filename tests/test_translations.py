"""The zh-hans catalogue is complete and current: every entry translated and none fuzzy, every
string the code marks for translation in it (and nothing the code no longer has), and the
committed .mo what msgfmt builds from the .po.

GNU gettext's own tools read the catalogue (msgfmt, msgattrib, msgcmp): Django's makemessages
and compilemessages already require them, and they parse .po files as gettext itself does, so
no hand-written parser can disagree with them."""

import gettext
import os
import shutil
import subprocess
import sys
from pathlib import Path

from django.conf import settings

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES"
PO = CATALOGUE / "django.po"
MO = CATALOGUE / "django.mo"

# What makemessages leaves out, as the catalogue's header says: the tests and the benchmarks
# are no part of what an operator reads.
MAKEMESSAGES_IGNORE = ("tests", "bench")
COPY_IGNORE = shutil.ignore_patterns(
    ".*", "__pycache__", "*.egg-info", "node_modules", *MAKEMESSAGES_IGNORE
)

# The English output the tools' messages are read in.
TOOLS_ENV = {**os.environ, "LC_ALL": "C", "LANGUAGE": ""}


def _tool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in args],
        capture_output=True,
        text=True,
        env=TOOLS_ENV,
        cwd=cwd,
        check=False,
    )


def _incomplete_entries(po: Path) -> str:
    """The untranslated and the fuzzy entries of `po`, as msgattrib prints them ("" if none)."""
    untranslated = _tool("msgattrib", "--untranslated", "--no-wrap", po).stdout
    fuzzy = _tool("msgattrib", "--only-fuzzy", "--no-wrap", po).stdout
    return (untranslated + fuzzy).strip()


def _assert_complete(po: Path) -> None:
    statistics = _tool("msgfmt", "--check", "--statistics", "-o", os.devnull, po)
    assert statistics.returncode == 0, statistics.stderr
    # "N translated messages." alone: msgfmt adds ", M fuzzy translations" and ", K
    # untranslated messages" when there are any.
    summary = statistics.stderr.strip()
    assert "fuzzy" not in summary and "untranslated" not in summary, (
        f"{po.name}: {summary}\n{_incomplete_entries(po)}"
    )
    assert "translated message" in summary, summary


def test_every_entry_is_translated_and_none_is_fuzzy() -> None:
    _assert_complete(PO)
    assert _incomplete_entries(PO) == ""


def test_the_catalogue_holds_every_string_of_the_code_and_nothing_else(tmp_path: Path) -> None:
    """makemessages, run on a copy of the project with the committed catalogue, finds no string
    the catalogue lacks (it would be untranslated, or fuzzy when a string changed) and drops
    none the catalogue has (--no-obsolete): the catalogue and the code hold the same strings."""
    copy = tmp_path / "project"
    shutil.copytree(settings.BASE_DIR, copy, ignore=COPY_IGNORE)
    ignore = [f"--ignore={name}" for name in MAKEMESSAGES_IGNORE]
    made = _tool(
        sys.executable,
        "manage.py",
        "makemessages",
        "--locale=zh_Hans",
        "--no-obsolete",
        *ignore,
        cwd=copy,
    )
    assert made.returncode == 0, made.stderr
    regenerated = copy / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
    _assert_complete(regenerated)
    # msgcmp DEF REF: every entry of REF has one in DEF (context included), whatever either says.
    for definitions, reference in ((PO, regenerated), (regenerated, PO)):
        compared = _tool("msgcmp", "--use-fuzzy", "--use-untranslated", definitions, reference)
        assert compared.returncode == 0, compared.stderr


def test_the_compiled_catalogue_is_built_from_the_po(tmp_path: Path) -> None:
    built = tmp_path / "django.mo"
    compiled = _tool("msgfmt", "--check", "-o", built, PO)
    assert compiled.returncode == 0, compiled.stderr
    with built.open("rb") as fresh, MO.open("rb") as committed:
        expected = gettext.GNUTranslations(fresh)._catalog  # type: ignore[attr-defined]
        actual = gettext.GNUTranslations(committed)._catalog  # type: ignore[attr-defined]
    assert len(expected) > 1
    assert actual == expected, "recompile: msgfmt --check -o " + str(MO) + " " + str(PO)
