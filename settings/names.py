"""Experiment and trial names, and the folders they become.

A name is refused when it is empty, holds a path separator, ``..``, a control character, or
starts with a dot; every other name maps to its own folder (``folder_name`` is one-to-one:
letters of any script, digits and a few punctuation marks stay, every other character becomes
``%XX`` per UTF-8 byte, ``%`` included), so no name writes outside its parent folder and no two
names share one.
"""
from __future__ import annotations

import unicodedata

MAX_FOLDER_BYTES = 255  # the longest file name Linux, macOS and Windows file systems accept
NAME_ROOM = 15  # bytes left for what is appended to a name: ``-<sweep label>``, ``_v<version>``
_KEPT = frozenset(" !#&'()+,-.;=@[]^_{}~")  # besides letters and digits: valid in a folder name everywhere


def folder_name(name: str) -> str:
    """The folder of ``name``: itself when it holds only letters, digits and ``_KEPT`` marks."""
    out = []
    for index, char in enumerate(name):
        if (char.isalnum() or char in _KEPT) and not (index == 0 and char in ". "):
            out.append(char)
        else:
            out.append("".join(f"%{b:02X}" for b in char.encode("utf-8")))
    return "".join(out)


def experiment_folder_name(name: str, version: int) -> str:
    """The folder of version ``version`` of experiment ``name`` under its ``base_dir``:
    ``folder_name(name)``, with ``_v<version>`` from version 2 on."""
    return folder_name(name) if version == 1 else f"{folder_name(name)}_v{version}"


def folder_key(folder: str) -> str:
    """Folders with equal keys are one folder on a case-insensitive, normalising file system
    (macOS, Windows): ``Run`` and ``run``, or ``\u212b`` (Angstrom sign) and ``\u00c5``."""
    return unicodedata.normalize("NFC", folder).casefold()


def name_problem(name: str, room: int = NAME_ROOM) -> str | None:
    """Why ``name`` cannot name an experiment or a trial (None when it can): ``room`` bytes of its
    folder name are kept for suffixes."""
    if not name.strip():
        return f"must be a non-empty name, got {name!r}"
    bad = sorted({c for c in name if c in "/\\" or unicodedata.category(c).startswith("C")})
    if bad:
        return (f"must not hold a path separator or control character, got {name!r} (with "
                f"{', '.join(repr(c) for c in bad)}); use letters, digits, spaces and - _ . = +")
    if ".." in name or name.startswith("."):
        return f"must not start with a dot or hold '..', got {name!r}; use letters, digits, spaces and - _ . = +"
    size = len(folder_name(name).encode("utf-8"))
    if size > MAX_FOLDER_BYTES - room:
        return f"is too long for a folder name ({size} bytes), got {name[:40]!r}...; at most {MAX_FOLDER_BYTES - room}"
    return None
