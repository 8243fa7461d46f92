"""The filter settings behind a derived EMG series, as attributes a reader can act on.

Stored on every ``/derived/emg_filtered/<stream>`` and ``/derived/emg_envelope/<stream>`` group
(see docs/session-format.md): the settings as given (``filter_settings``, JSON of
``kneegui.dsp.FilterSettings``) and the effective values after the 0.9 x Nyquist clamp, so the
series can be recomputed from the raw stream without KneeGUI.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from kneegui.dsp import FilterSettings
from kneegui.dsp.sos import clamp_cutoff

KINDS = ("filtered", "envelope")


def settings_dict(settings: FilterSettings) -> dict[str, Any]:
    """``FilterSettings`` as a plain dict (JSON-able)."""
    return dataclasses.asdict(settings)


def notch_frequencies(settings: FilterSettings, fs: float) -> list[float]:
    """Mains notch frequencies actually applied at ``fs`` (harmonics above the clamp skipped)."""
    if settings.mains is None:
        return []
    limit = clamp_cutoff(float("inf"), fs)
    return [k * float(settings.mains) for k in range(1, settings.harmonics + 1)
            if k * settings.mains < limit]


def describe(settings: FilterSettings, fs: float, kind: str) -> str:
    """One sentence naming every filter step (also used as NWB ``filtering``)."""
    low, high = clamp_cutoff(settings.low, fs), clamp_cutoff(settings.high, fs)
    text = (f"causal Butterworth band-pass {low:g}-{high:g} Hz (order {settings.order} per "
            f"edge, second-order sections, zero initial state)")
    notches = notch_frequencies(settings, fs)
    if notches:
        text += (f", IIR notches at {', '.join(f'{f:g}' for f in notches)} Hz "
                 f"(Q {settings.notch_q:g})")
    if kind == "envelope":
        cutoff = clamp_cutoff(settings.envelope_cutoff, fs)
        text += (f", then full-wave rectification and a causal Butterworth low-pass at "
                 f"{cutoff:g} Hz (order {settings.envelope_order})")
    return text + f"; sampling rate {fs:g} Hz"


def filter_attrs(settings: FilterSettings, fs: float, kind: str) -> dict[str, Any]:
    """Attributes of a derived EMG series filtered live with ``settings`` at ``fs`` Hz."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    attrs: dict[str, Any] = {
        "filter_settings": json.dumps(settings_dict(settings)),
        "filter_description": describe(settings, fs, kind),
        "highpass_hz": clamp_cutoff(settings.low, fs),
        "lowpass_hz": clamp_cutoff(settings.high, fs),
        "filter_order": int(settings.order),
        "notch_hz": np.asarray(notch_frequencies(settings, fs), dtype=np.float64),
        "notch_q": float(settings.notch_q),
    }
    if kind == "envelope":
        attrs["envelope_cutoff_hz"] = clamp_cutoff(settings.envelope_cutoff, fs)
        attrs["envelope_order"] = int(settings.envelope_order)
    return attrs


def settings_from_attrs(attrs: dict[str, Any]) -> FilterSettings | None:
    """The ``FilterSettings`` stored on a derived series (None for files without them)."""
    text = attrs.get("filter_settings")
    if not text:
        return None
    try:
        return FilterSettings(**json.loads(text))
    except (TypeError, ValueError):
        return None
