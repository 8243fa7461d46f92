"""Weights (safetensors) + JSON model card: saving, loading, validation.

A model is two files with one stem: ``<stem>.safetensors`` (tensors only, loaded without
executing code; a subject model's calibration memory arrays are stored there too, under
``analog.*``) and ``<stem>.json`` (the :class:`~kneegui.model.card.ModelCard`). Loading checks the
card (:meth:`ModelCard.from_dict`), the tensors' shapes, that every tensor is finite, and the
hashes of the network and the memory against the card; saving never changes what it is given.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kneegui.model.card import CARD_FORMAT, CARD_VERSION, CardError, ModelCard
from kneegui.model.memory import AnalogMemory

#: A card file larger than this is not a KneeGUI card (a real one is a few hundred kB).
MAX_CARD_BYTES = 16 * 1024 * 1024

_HINT = "pick a model saved by `kneegui train` / calibration, or retrain it"
_DAMAGED = "the file is damaged or not a KneeGUI model; re-copy it or retrain with `kneegui train`"


class ModelLoadError(Exception):
    """A model file is missing, corrupt, or not a KneeGUI model; the message says what to do."""


class NotAModelCardError(ModelLoadError):
    """The JSON file is not a KneeGUI model card at all (e.g. another tool's JSON)."""


@dataclass(frozen=True)
class LoadedModel:
    """A network in eval mode, its card and, for a subject model, its calibration memory;
    ``path`` is the stem it was loaded from (if any)."""

    net: Any  # KneeNet (kept Any so this module imports without torch at type-check time)
    card: ModelCard
    path: Path | None = None
    memory: AnalogMemory | None = None

    def __post_init__(self) -> None:
        described = self.card.memory
        if (described is None) != (self.memory is None):
            raise ValueError("the card and the model disagree on having a calibration memory")
        if self.memory is not None and (self.memory.params != described.params
                                        or self.memory.horizons != self.card.horizons):
            raise ValueError("the calibration memory does not match the card's description")

    @property
    def extrapolator(self) -> Any:
        """The subject extrapolator (``kneegui.model.extrapolator.Extrapolator``) or None."""
        stack = self.card.extrapolator
        return None if stack is None else stack.extrapolator

    @property
    def model_id(self) -> str:
        """Short stable id: card name + first 12 hex of the weights hash."""
        return f"{self.card.name}@{weights_digest(self.net)[:12]}"


def weights_digest(net: Any) -> str:
    """SHA-256 over the network's tensors (names, shapes and bytes)."""
    h = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        h.update(name.encode())
        arr = tensor.detach().cpu().contiguous().numpy()
        h.update(str(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def model_paths(path: str | Path) -> tuple[Path, Path]:
    """(weights, card) paths for a stem or for either of the two files."""
    p = Path(path)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def card_to_save(model: LoadedModel) -> ModelCard:
    """The card as it is written for ``model``: the weights hash (and the memory's hash) filled
    in, the current card version, checked like a loaded card."""
    card = model.card
    training = {**card.training, "weights_sha256": weights_digest(model.net)}
    memory = card.memory
    if model.memory is not None:
        memory = dataclasses.replace(memory, sha256=model.memory.digest())
    return dataclasses.replace(card, training=training, memory=memory,
                               version=CARD_VERSION).validated()


def save_model(stem: str | Path, model: LoadedModel) -> tuple[Path, Path]:
    """Write ``stem.safetensors`` and ``stem.json`` (each replaced atomically); returns both
    paths. ``model`` is not changed; an invalid card raises :class:`CardError` before anything
    is written."""
    import torch
    from safetensors.torch import save_file

    card = card_to_save(model)
    weights_path, card_path = model_paths(stem)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()}
    if model.memory is not None:
        state.update({k: torch.from_numpy(v.copy()) for k, v in model.memory.tensors().items()})
    tmp_w = weights_path.with_name(weights_path.name + ".tmp")
    tmp_c = card_path.with_name(card_path.name + ".tmp")
    save_file(state, str(tmp_w), metadata={"format": CARD_FORMAT, "name": card.name})
    tmp_c.write_text(json.dumps(card.to_dict(), indent=1, default=_json_default) + "\n")
    tmp_w.chmod(0o644)
    tmp_w.replace(weights_path)
    tmp_c.replace(card_path)
    return weights_path, card_path


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_card(path: str | Path) -> ModelCard:
    """Read and validate only the JSON card (cheap; used by `kneegui models list`)."""
    _, card_path = model_paths(path)
    if not card_path.is_file():
        raise ModelLoadError(f"{card_path}: model card not found ({_HINT})")
    try:
        if card_path.stat().st_size > MAX_CARD_BYTES:
            raise ModelLoadError(f"{card_path}: {card_path.stat().st_size} bytes is too large "
                                 f"for a model card; {_HINT}")
        data = json.loads(card_path.read_text())
    except RecursionError as exc:
        raise ModelLoadError(f"{card_path}: JSON nested too deeply to be a model card; "
                             f"{_HINT}") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotAModelCardError(f"{card_path}: not a readable JSON model card ({exc}); "
                            f"{_HINT}") from exc
    if not isinstance(data, dict) or data.get("format") != CARD_FORMAT:
        raise NotAModelCardError(
            f"{card_path}: not a KneeGUI model card (format != {CARD_FORMAT!r}); {_HINT}")
    try:
        return ModelCard.from_dict(data)
    except CardError as exc:
        raise ModelLoadError(f"{card_path}: model card refused: {exc}; {_HINT}") from exc


def load_model(path: str | Path) -> LoadedModel:
    """Load weights + card without executing code; :class:`ModelLoadError` on any problem."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from kneegui.model.network import KneeNet

    weights_path, card_path = model_paths(path)
    card = read_card(card_path)
    if not weights_path.is_file():
        raise ModelLoadError(f"{weights_path}: weights file not found next to {card_path.name}")
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"{weights_path}: cannot read safetensors ({exc}); "
                             f"{_DAMAGED}") from exc
    analog = {k: state.pop(k).numpy() for k in [k for k in state if k.startswith("analog.")]}
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            raise ModelLoadError(f"{weights_path}: tensor {name} holds NaN/inf; {_DAMAGED}")
    net = KneeNet(card.config)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ModelLoadError(
            f"{weights_path}: tensors do not match the card's network ({first}); {_DAMAGED}"
        ) from exc
    expected = card.training.get("weights_sha256")
    if expected and expected != weights_digest(net):
        raise ModelLoadError(f"{weights_path}: weights hash differs from the card; {_DAMAGED}")
    memory = _load_memory(card, analog, weights_path)
    net.eval()
    return LoadedModel(net=net, card=card, path=weights_path.with_suffix(""), memory=memory)


def _load_memory(card: ModelCard, tensors: dict[str, np.ndarray],
                 weights_path: Path) -> AnalogMemory | None:
    """The calibration memory the card describes; ModelLoadError if it does not match."""
    hint = "the subject model is damaged; calibrate the subject again"
    if card.memory is None:
        if tensors:
            raise ModelLoadError(f"{weights_path}: holds calibration memory arrays the card does "
                                 f"not describe; {hint}")
        return None
    try:
        memory = AnalogMemory.from_tensors(card.memory.params, tensors)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(
            f"{weights_path}: calibration memory unusable ({exc}); {hint}") from exc
    if memory.digest() != card.memory.sha256:
        raise ModelLoadError(f"{weights_path}: calibration memory hash differs from the card; "
                             f"{hint}")
    if memory.horizons != card.horizons:
        raise ModelLoadError(f"{weights_path}: calibration memory is not for {card.horizons} "
                             f"horizons; {hint}")
    return memory
