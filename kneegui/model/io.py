"""Weights (safetensors) + JSON model card: saving, loading, validation.

A model is two files with one stem: ``<stem>.safetensors`` (tensors only, loaded without
executing code) and ``<stem>.json`` (the :class:`ModelCard`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kneegui.model.config import INPUT_SETS, MODEL_RATE, N_HORIZONS, KneeNetConfig, channel_names
from kneegui.model.features import SubjectNorm

CARD_FORMAT = "kneegui-model"
#: 2 adds the optional ``analog`` block (calibration memory; its arrays live in the weights
#: file under ``analog.*``); 3 the optional ``extrapolator`` block (subject AR extrapolator, see
#: :mod:`kneegui.model.extrapolator`). Older cards load unchanged.
CARD_VERSION = 3


class ModelLoadError(Exception):
    """A model file is missing, corrupt, or not a KneeGUI model; the message says what to do."""


@dataclass
class ModelCard:
    """Everything needed to use a network besides its tensors."""

    name: str
    input_set: str
    config: dict[str, Any]
    norm: dict[str, Any]
    model_rate: float = MODEL_RATE
    window: int = 100
    horizons: int = N_HORIZONS
    channels: list[str] = field(default_factory=list)
    dsp_settings: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    version: int = CARD_VERSION
    base_model: str | None = None
    subject: str | None = None
    created: str | None = None
    #: Calibration memory of a subject model: {"params", "weight" [H], "sha256"} or empty.
    analog: dict[str, Any] = field(default_factory=dict)
    #: Subject extrapolator: {"lags", "coef" [lags][H], "fitted" [H], "weight" [H]} or empty.
    extrapolator: dict[str, Any] = field(default_factory=dict)
    format: str = CARD_FORMAT

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def subject_norm(self) -> SubjectNorm:
        return SubjectNorm.from_dict(self.norm["subject"])

    def network_config(self) -> KneeNetConfig:
        return KneeNetConfig.from_dict(self.config)


@dataclass
class LoadedModel:
    """A network in eval mode plus its card; ``path`` is the stem it was loaded from (if any)."""

    net: Any  # KneeNet (kept Any so this module imports without torch at type-check time)
    card: ModelCard
    path: Path | None = None
    memory: Any = None  # kneegui.model.analog.AnalogMemory of a calibrated subject model
    #: kneegui.model.extrapolator.Extrapolator of a calibrated subject model (from the card)
    extrapolator: Any = None

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


def save_model(stem: str | Path, net: Any, card: ModelCard, memory: Any = None
               ) -> tuple[Path, Path]:
    """Write ``stem.safetensors`` and ``stem.json`` (with the calibration ``memory``, if any);
    returns both paths."""
    import torch
    from safetensors.torch import save_file

    weights_path, card_path = model_paths(stem)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    card.training = {**card.training, "weights_sha256": weights_digest(net)}
    if memory is not None:
        state.update({k: torch.from_numpy(v.copy()) for k, v in memory.tensors().items()})
        card.analog = {**card.analog, "params": memory.params.to_dict(),
                       "sha256": memory.digest()}
    elif card.analog:
        raise ValueError("the card describes a calibration memory but none was given to save")
    card.version = CARD_VERSION
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
    hint = "pick a model saved by `kneegui train` / calibration, or retrain it"
    if not card_path.is_file():
        raise ModelLoadError(f"{card_path}: model card not found ({hint})")
    try:
        data = json.loads(card_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(
            f"{card_path}: not a readable JSON model card ({exc}); {hint}"
        ) from exc
    if not isinstance(data, dict) or data.get("format") != CARD_FORMAT:
        raise ModelLoadError(
            f"{card_path}: not a KneeGUI model card (format != {CARD_FORMAT!r}); {hint}"
        )
    if data.get("version", 0) > CARD_VERSION:
        raise ModelLoadError(
            f"{card_path}: card version {data.get('version')} is newer than this KneeGUI "
            f"supports ({CARD_VERSION}); update KneeGUI"
        )
    try:
        card = ModelCard(**data)
        card.network_config()
        card.subject_norm  # noqa: B018 - validates the norm block
    except (TypeError, KeyError, ValueError) as exc:
        raise ModelLoadError(
            f"{card_path}: model card is incomplete or invalid ({exc}); {hint}"
        ) from exc
    if card.input_set not in INPUT_SETS:
        raise ModelLoadError(f"{card_path}: unknown input set {card.input_set!r}; {hint}")
    return card


def load_model(path: str | Path) -> LoadedModel:
    """Load weights + card without executing code; :class:`ModelLoadError` on any problem."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from kneegui.model.network import KneeNet

    weights_path, card_path = model_paths(path)
    card = read_card(card_path)
    hint = "the file is damaged or not a KneeGUI model; re-copy it or retrain with `kneegui train`"
    if not weights_path.is_file():
        raise ModelLoadError(f"{weights_path}: weights file not found next to {card_path.name}")
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"{weights_path}: cannot read safetensors ({exc}); {hint}") from exc
    config = card.network_config()
    net = KneeNet(config)
    analog = {k: state.pop(k).numpy() for k in [k for k in state if k.startswith("analog.")]}
    memory = _load_memory(card, analog, weights_path) if card.analog or analog else None
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ModelLoadError(
            f"{weights_path}: tensors do not match the card's network ({first}); {hint}"
        ) from exc
    expected = card.training.get("weights_sha256")
    if expected and expected != weights_digest(net):
        raise ModelLoadError(f"{weights_path}: weights hash differs from the card; {hint}")
    n_channels = len(card.channels) or len(channel_names(card.input_set))
    if config.n_inputs != n_channels:
        raise ModelLoadError(
            f"{card_path}: network has {config.n_inputs} inputs, card lists {n_channels}"
        )
    extrapolator = _load_extrapolator(card, card_path) if card.extrapolator else None
    net.eval()
    return LoadedModel(net=net, card=card, path=weights_path.with_suffix(""), memory=memory,
                       extrapolator=extrapolator)


def _load_extrapolator(card: ModelCard, card_path: Path) -> Any:
    """The subject extrapolator described by the card; ModelLoadError if it is damaged."""
    from kneegui.model.extrapolator import Extrapolator

    hint = "the subject model is damaged; calibrate the subject again"
    try:
        extrapolator = Extrapolator.from_dict(card.extrapolator)
        weight = np.asarray(card.extrapolator["weight"], np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{card_path}: extrapolator block invalid ({exc!r}); {hint}") from exc
    if extrapolator.horizons != card.horizons or weight.shape != (card.horizons,):
        raise ModelLoadError(f"{card_path}: extrapolator is not for {card.horizons} horizons; "
                             f"{hint}")
    if not np.isfinite(weight).all() or weight.min() < 0 or weight.max() > 1:
        raise ModelLoadError(f"{card_path}: extrapolator weights outside [0, 1]; {hint}")
    return extrapolator


def _load_memory(card: ModelCard, tensors: dict[str, np.ndarray], weights_path: Path) -> Any:
    """The calibration memory described by the card; ModelLoadError if it does not match."""
    from kneegui.model.analog import AnalogMemory

    hint = "the subject model is damaged; calibrate the subject again"
    try:
        memory = AnalogMemory.from_tensors(card.analog["params"], tensors)
        weight = np.asarray(card.analog["weight"], np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(
            f"{weights_path}: calibration memory incomplete ({exc!r}); {hint}"
        ) from exc
    if memory.digest() != card.analog.get("sha256"):
        raise ModelLoadError(f"{weights_path}: calibration memory hash differs from the card; "
                             f"{hint}")
    if weight.shape != (card.horizons,) or memory.horizons != card.horizons:
        raise ModelLoadError(f"{weights_path}: calibration memory is not for {card.horizons} "
                             f"horizons; {hint}")
    return memory
