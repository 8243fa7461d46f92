"""What the exported file says about itself (ONNX ``metadata_props``, all strings).

A controller reads these instead of guessing: the model's identity and hashes, the rate, the
window rule's row count, the input columns with units, the horizons in milliseconds, the EMG
feature settings its envelopes must be computed with, and the full model card.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from kneegui.model.io import LoadedModel, model_paths, weights_digest
from kneegui.portable.columns import input_columns
from kneegui.portable.predictor_graph import INPUT, OUTPUT

FORMAT = "kneegui-portable-predictor"
FORMAT_VERSION = 1


def parts(model: LoadedModel) -> list[str]:
    """The predictor stages in the graph, in order."""
    card = model.card
    out = ["normalisation", "network"]
    if card.velocity_mix is not None:
        out.append("velocity_mix")
    if model.memory is not None:
        out.append("memory")
    if card.extrapolator is not None:
        out.append("extrapolator")
    return out


def horizons_ms(card: Any) -> list[float]:
    """Horizon k (1..H model steps) in milliseconds."""
    return [1000.0 * k / card.model_rate for k in range(1, card.horizons + 1)]


def metadata(model: LoadedModel) -> dict[str, str]:
    """The ``metadata_props`` of ``model``'s exported predictor."""
    from kneegui import __version__

    card = model.card
    cols = input_columns(card)
    card_file = ""
    if model.path is not None:
        card_path = model_paths(model.path)[1]
        if card_path.is_file():
            card_file = hashlib.sha256(card_path.read_bytes()).hexdigest()
    return {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "kneegui_version": __version__,
        "model_id": model.model_id,
        "model_name": card.name,
        "input_set": card.input_set,
        "subject": card.subject or "",
        "base_model": card.base_model or "",
        "created": card.created or "",
        "weights_sha256": weights_digest(model.net),
        "memory_sha256": model.memory.digest() if model.memory is not None else "",
        "card_file_sha256": card_file,
        "parts": ",".join(parts(model)),
        "model_rate_hz": f"{card.model_rate:g}",
        "window": str(card.window),
        "rows_needed": str(card.rows_needed),
        "horizons": str(card.horizons),
        "horizons_ms": ",".join(f"{h:g}" for h in horizons_ms(card)),
        "input_name": INPUT,
        "input_shape": f"batch,{card.rows_needed},{len(cols)}",
        "input_dtype": "float32",
        "input_columns": ",".join(c.name for c in cols),
        "input_units": json.dumps([c.unit for c in cols]),
        "row_order": "oldest first; the last row is now (the time the prediction is made)",
        "output_name": OUTPUT,
        "output_shape": f"batch,{card.horizons}",
        "output_unit": "degrees (knee flexion, flexion positive, 0 = extended)",
        "gap_rule": "a window with a NaN or inf value gives a row of NaN",
        "emg_features": "envelopes of kneegui.dsp.EmgFeatureExtractor at model_rate_hz with "
                        "dsp_settings (see docs/portable-predictor.md)",
        "dsp_settings": json.dumps(card.dsp_settings, sort_keys=True),
        "card_json": json.dumps(card.to_dict(), sort_keys=True, default=_plain),
    }


def _plain(obj: Any) -> Any:
    """JSON for the numpy values a card's free-form blocks (training, metrics) may hold."""
    import numpy as np

    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)
