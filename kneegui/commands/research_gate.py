"""Research commands (`kneegui train`, `kneegui evaluate`) need :mod:`kneegui.research` and its
optional dependencies; the app bundle and a plain install leave them out. This says so clearly."""

from __future__ import annotations

import importlib.util

#: The optional extra that holds the research dependencies (pyproject.toml).
EXTRA = "research"


def missing_research(command: str, modules: tuple[str, ...] = ()) -> str | None:
    """None when ``command`` can run; otherwise the message that says what to install."""
    if importlib.util.find_spec("kneegui.research") is None:
        return (f"`kneegui {command}` is a research command and is not part of this app bundle; "
                f"run it from a source install: pip install 'kneegui[{EXTRA}]'")
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        return (f"`kneegui {command}` needs the research extra ({', '.join(missing)} missing); "
                f"install it with: pip install 'kneegui[{EXTRA}]' (in a checkout: "
                f".venv/bin/pip install -e '.[{EXTRA}]')")
    return None
