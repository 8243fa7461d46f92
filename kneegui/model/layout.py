"""The channel layout a model was trained on, checked against the channels a recording or a
stream offers.

A model's EMG inputs are muscles (``card.emg_inputs``, e.g. RF, BF, VM, ST). A stream or a
recording offers channels with labels (``EMG 1``, ``R rectus femoris``, ``RF``...). A channel
feeds an input when its label names it (case-insensitive), or when a channel map says so: a
mapping ``channel label -> model input`` written ``"EMG 1=RF, EMG 2=BF"`` on the command line or
``"EMG 1" = "RF"`` in a dataset manifest. Nothing is guessed: a model whose inputs are not all
found is refused with a message that lists the channels there are and how to map them (never
"the first four channels").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: The model input a knee-angle channel is mapped to (``"Knee R=angle"``).
ANGLE_INPUT = "angle"


class LayoutError(ValueError):
    """The channels offered do not provide the model's inputs; the message says how to map."""


def parse_channel_map(text: str | None) -> dict[str, str]:
    """``"EMG 1=RF, EMG 2=BF"`` -> ``{"EMG 1": "RF", "EMG 2": "BF"}`` (labels may hold spaces;
    a comma or a semicolon separates pairs). Empty text gives an empty map."""
    out: dict[str, str] = {}
    if not text or not text.strip():
        return out
    for part in text.replace(";", ",").split(","):
        if not part.strip():
            continue
        label, sep, target = part.partition("=")
        if not sep or not label.strip() or not target.strip():
            raise LayoutError(f"channel map entry {part.strip()!r} is not LABEL=INPUT (e.g. "
                              "'EMG 1=RF'; pairs separated by commas)")
        if label.strip() in out:
            raise LayoutError(f"channel map names channel {label.strip()!r} twice")
        out[label.strip()] = target.strip()
    return out


def _fold(text: str) -> str:
    return str(text).strip().casefold()


def _lookup(channel_map: Mapping[str, str], label: str) -> str | None:
    wanted = _fold(label)
    for key, value in channel_map.items():
        if _fold(key) == wanted:
            return value
    return None


def map_example(inputs: Sequence[str]) -> str:
    """A channel map template for ``inputs`` (the operator fills in the channel labels)."""
    return ",".join(f"<channel>={name}" for name in inputs)


def _listing(labels: Sequence[str], limit: int = 24) -> str:
    shown = [str(lab) or f"(unlabelled #{i})" for i, lab in enumerate(labels[:limit])]
    more = f", ... ({len(labels)} in all)" if len(labels) > limit else ""
    return ", ".join(shown) + more


def match_channels(
    inputs: Sequence[str],
    labels: Sequence[str],
    *,
    channel_map: Mapping[str, str] | None = None,
    picks: Sequence[int] | None = None,
    source: str = "the stream",
    consumer: str = "the model",
) -> list[int]:
    """Indices into ``labels`` of the channels that feed ``inputs``, in input order.

    ``channel_map`` (label -> input) renames channels first; ``picks`` restricts the search to
    those channel indices. Raises :class:`LayoutError` naming the inputs not found (or found
    twice), the channels ``source`` has, and how to map them.
    """
    map_ = dict(channel_map or {})
    unknown = [lab for lab in map_ if not any(_fold(lab) == _fold(x) for x in labels)]
    if unknown:
        raise LayoutError(
            f"the channel map names {', '.join(repr(u) for u in unknown)}, but {source} has no "
            f"such channel; its channels are: {_listing(labels)}")
    candidates = list(range(len(labels))) if picks is None else [int(i) for i in picks]
    names = {}
    for i in candidates:
        mapped = _lookup(map_, labels[i]) if map_ else None
        names[i] = _fold(mapped if mapped is not None else labels[i])
    out: list[int] = []
    missing: list[str] = []
    for name in inputs:
        hits = [i for i in candidates if names[i] == _fold(name)]
        if len(hits) > 1:
            raise LayoutError(
                f"{consumer} input {name!r} matches several channels of {source} "
                f"({_listing([labels[i] for i in hits])}); map exactly one channel to it")
        if hits:
            out.append(hits[0])
        else:
            missing.append(name)
    if missing:
        offered = [labels[i] for i in candidates]
        raise LayoutError(
            f"{consumer} takes the inputs {', '.join(inputs)} (in this order), but "
            f"{source} has no channel for {', '.join(missing)}; its channels are: "
            f"{_listing(offered)}. Map each input to the channel that carries it with a "
            f"channel map, e.g. --channel-map \"{map_example(inputs)}\" (in a dataset "
            "manifest: a [channels] table, \"<channel>\" = \"RF\"), or label the channels so "
            "in the sender")
    return out


def emg_rate_problem(fs: float, dsp_settings: Mapping[str, Any] | None = None) -> str | None:
    """Why EMG sampled at ``fs`` Hz cannot give the model's features (None when it can): the
    feature band-pass must fit below 0.9 x Nyquist, as it did in training."""
    from kneegui.dsp import NYQUIST_FRACTION, FilterSettings

    known = set(FilterSettings.__dataclass_fields__)
    settings = FilterSettings(**{k: v for k, v in dict(dsp_settings or {}).items() if k in known})
    if not fs or fs <= 0:
        return ("the EMG has no nominal sampling rate; the EMG filters need one (set "
                "nominal_srate on the sender)")
    need = settings.high / (NYQUIST_FRACTION / 2.0)
    if fs + 1e-9 < need:
        return (f"EMG at {fs:g} Hz cannot carry the model's {settings.low:g}-{settings.high:g} "
                f"Hz feature band (needs >= {need:g} Hz); record the EMG at {need:g} Hz or more")
    return None


def model_emg_channels(card: Any, labels: Sequence[str], rate: float, *,
                       picks: Sequence[int] | None = None,
                       channel_map: Mapping[str, str] | None = None,
                       source: str = "the EMG stream") -> list[int] | None:
    """The channels of an EMG stream (``labels``, ``rate`` Hz) that feed the model whose card is
    ``card``, in its input order; None for a model without EMG inputs. :class:`LayoutError`
    when the stream lacks an input (see :func:`match_channels`) or its rate cannot give the
    model's features (:func:`emg_rate_problem`)."""
    inputs = tuple(getattr(card, "emg_inputs", ()) or ())
    if not inputs:
        return None
    consumer = f"model '{card.name}'"
    problem = emg_rate_problem(rate, getattr(card, "dsp_settings", None))
    if problem:
        raise LayoutError(f"{consumer} cannot use {source}: {problem}")
    return match_channels(inputs, labels, channel_map=channel_map, picks=picks, source=source,
                          consumer=consumer)
