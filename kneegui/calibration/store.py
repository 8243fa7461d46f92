"""Where models live: the shipped ``models/`` folder (read-only) and a per-user subject store.

The subject store is ``$KNEEGUI_SUBJECT_MODELS_DIR`` (or ``$KNEEGUI_MODEL_DIR``) if set, else the
platform's per-user data folder: ``~/.local/share/kneegui/models`` (Linux, honours
``$XDG_DATA_HOME``), ``~/Library/Application Support/kneegui/models`` (macOS),
``%APPDATA%\\kneegui\\models`` (Windows). Each model is ``<stem>.safetensors`` + ``<stem>.json``
(see :mod:`kneegui.model.io`). ``active.json`` in the store remembers the active model.

Listing reads only the JSON cards, so it is fast and imports no torch.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kneegui.paths import models_dir

SHIPPED = "shipped"
SUBJECT = "subject"
_ACTIVE_FILE = "active.json"


def default_subject_model_dir() -> Path:
    """The per-user subject model folder (environment override first)."""
    for var in ("KNEEGUI_SUBJECT_MODELS_DIR", "KNEEGUI_MODEL_DIR"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "kneegui" / "models"


class ModelStoreError(Exception):
    """A store operation failed; the message says what to do."""


@dataclass(frozen=True)
class ModelEntry:
    """One model found in the store (from its card only)."""

    path: Path  # stem: <path>.safetensors + <path>.json
    kind: str  # "shipped" | "subject"
    name: str
    input_set: str = ""
    subject: str | None = None
    created: str | None = None
    base_model: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # set when the card could not be read
    card: dict[str, Any] = field(default_factory=dict)  # the whole card (for model selectors)

    @property
    def label(self) -> str:
        """Short text for a model selector."""
        who = f"subject {self.subject}" if self.subject else self.kind
        when = f", {self.created[:16]}" if self.created else ""
        return f"{self.name} ({self.input_set}, {who}{when})"


class SubjectModelStore:
    """Lists, loads, saves, deletes and activates models.

    ``root`` holds subject models (default :func:`default_subject_model_dir`); ``shipped_dir``
    holds the pretrained models shipped with KneeGUI (default :func:`kneegui.paths.models_dir`).
    Shipped models are never deleted or overwritten.
    """

    def __init__(self, root: str | Path | None = None, shipped_dir: str | Path | None = None):
        self.root = Path(root) if root is not None else default_subject_model_dir()
        self.shipped_dir = Path(shipped_dir) if shipped_dir is not None else models_dir()

    # -- listing -------------------------------------------------------------------------------
    def list(self, kind: str | None = None, subject: str | None = None) -> list[ModelEntry]:
        """Shipped models first (by name), then subject models (newest first)."""
        shipped = self._scan(self.shipped_dir, SHIPPED) if kind in (None, SHIPPED) else []
        subject_models = self._scan(self.root, SUBJECT) if kind in (None, SUBJECT) else []
        subject_models.sort(key=lambda e: e.created or "", reverse=True)
        entries = sorted(shipped, key=lambda e: e.name) + subject_models
        if subject is not None:
            entries = [e for e in entries if e.subject == subject]
        return entries

    def _scan(self, folder: Path, kind: str) -> list[ModelEntry]:
        from kneegui.model.io import ModelLoadError, read_card

        if not folder.is_dir():
            return []
        out = []
        for card_path in sorted(folder.glob("*.json")):
            if card_path.name == _ACTIVE_FILE:
                continue
            stem = card_path.with_suffix("")
            if not stem.with_name(stem.name + ".safetensors").is_file():
                continue
            try:
                card = read_card(card_path)
            except ModelLoadError as exc:
                out.append(ModelEntry(stem, kind, stem.name, error=str(exc)))
                continue
            out.append(
                ModelEntry(
                    path=stem,
                    kind=kind,
                    name=card.name,
                    input_set=card.input_set,
                    subject=card.subject,
                    created=card.created,
                    base_model=card.base_model,
                    metrics=dict(card.metrics),
                    card=card.to_dict(),
                )
            )
        return out

    def find(self, name_or_path: str | Path) -> ModelEntry:
        """A model by stem path, file path, stem name or card name."""
        wanted = Path(name_or_path)
        stem = wanted.with_suffix("") if wanted.suffix in (".safetensors", ".json") else wanted
        entries = self.list()
        for e in entries:
            if e.path.resolve() == stem.resolve() or str(name_or_path) in (e.path.name, e.name):
                return e
        if stem.with_name(stem.name + ".json").is_file():
            kind = SUBJECT if stem.parent.resolve() == self.root.resolve() else SHIPPED
            return self._entry_for(stem, kind)
        names = ", ".join(e.path.name for e in entries) or "none"
        raise ModelStoreError(
            f"no model named {str(name_or_path)!r}; available: {names} (see `kneegui models list`)"
        )

    def _entry_for(self, stem: Path, kind: str) -> ModelEntry:
        found = [e for e in self._scan(stem.parent, kind) if e.path == stem]
        if not found:
            raise ModelStoreError(f"{stem}: no model (.safetensors + .json) with this stem")
        return found[0]

    # -- loading / deleting ---------------------------------------------------------------------
    def load(self, model: ModelEntry | str | Path) -> Any:
        """Load weights + card (``kneegui.model.LoadedModel``); raises ``ModelLoadError``."""
        from kneegui.model.io import load_model

        path = model.path if isinstance(model, ModelEntry) else Path(model)
        return load_model(path)

    def delete(self, model: ModelEntry | str | Path) -> None:
        """Delete a subject model (both files). Shipped models are refused."""
        entry = model if isinstance(model, ModelEntry) else self.find(model)
        if entry.kind != SUBJECT or entry.path.parent.resolve() != self.root.resolve():
            raise ModelStoreError(
                f"{entry.path.name} is a shipped model and cannot be deleted; "
                "only subject models can"
            )
        for suffix in (".safetensors", ".json"):
            entry.path.with_name(entry.path.name + suffix).unlink(missing_ok=True)
        active = self.active_path()
        if active is not None and active == entry.path:
            (self.root / _ACTIVE_FILE).unlink(missing_ok=True)

    # -- saving -------------------------------------------------------------------------------
    def new_stem(self, subject: str, input_set: str) -> Path:
        """A not-yet-used stem ``<subject>_<UTC time>_<input set>[_n]`` in the store."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        base = f"{subject}_{stamp}_{input_set.replace('+', '-')}"
        stem, n = self.root / base, 1
        while any(stem.with_name(stem.name + s).exists() for s in (".safetensors", ".json")):
            n += 1
            stem = self.root / f"{base}_{n}"
        return stem

    def save(self, loaded: Any, subject: str) -> Path:
        """Save a ``LoadedModel`` under a fresh stem; returns the stem path."""
        from kneegui.model.io import save_model

        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ModelStoreError(
                f"cannot create the model folder {self.root} ({exc}); "
                "set KNEEGUI_SUBJECT_MODELS_DIR to a writable folder"
            ) from exc
        stem = self.new_stem(subject, loaded.card.input_set)
        try:
            save_model(stem, loaded)
        except OSError as exc:
            raise ModelStoreError(
                f"cannot write the subject model to {self.root} ({exc.strerror or exc}); "
                "free some space or set KNEEGUI_SUBJECT_MODELS_DIR to a writable folder"
            ) from exc
        return stem

    def save_subject_model(self, model: Any, subject_id: str, *, activate: bool) -> Path:
        """Save a calibrated subject model (its card is complete: see
        :mod:`kneegui.adaptation.subject_model`); activate it if asked. Returns the stem."""
        stem = self.save(model, subject_id)
        if activate:
            self.set_active(stem)
        return stem

    # -- active model ---------------------------------------------------------------------------
    def set_active(self, model: ModelEntry | str | Path) -> None:
        """Remember ``model`` as the active one (persisted in the store)."""
        path = model.path if isinstance(model, ModelEntry) else Path(model)
        if path.suffix in (".safetensors", ".json"):
            path = path.with_suffix("")
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / (_ACTIVE_FILE + ".tmp")
        tmp.write_text(json.dumps({"path": str(path.resolve())}) + "\n")
        tmp.replace(self.root / _ACTIVE_FILE)

    def active_path(self) -> Path | None:
        """The active model's stem, or None (nothing chosen, or the model was removed)."""
        try:
            data = json.loads((self.root / _ACTIVE_FILE).read_text())
            path = Path(data["path"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return path if path.with_name(path.name + ".json").is_file() else None
