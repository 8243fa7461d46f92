"""Units the model inputs are computed in: EMG in millivolts, the knee angle in degrees.

A stream that declares its channels' unit (LSL ``desc/channels/channel/unit``) in volts,
millivolts or microvolts (EMG), or in degrees or radians (knee angle), is converted to the model
unit before the features are computed, live (:class:`kneegui.acquisition.Hub`) and offline
(:mod:`kneegui.labdata`) alike; a stream without a unit (or an unknown one) is used as sent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Factor from each EMG unit to millivolts.
TO_MILLIVOLTS = {"v": 1e3, "volt": 1e3, "volts": 1e3, "mv": 1.0, "millivolt": 1.0,
                 "millivolts": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "microvolt": 1e-3,
                 "microvolts": 1e-3}
#: Factor from each angle unit to degrees.
TO_DEGREES = {"deg": 1.0, "degree": 1.0, "degrees": 1.0, "°": 1.0, "rad": 180.0 / math.pi,
              "radian": 180.0 / math.pi, "radians": 180.0 / math.pi}


def common_unit(units: Sequence[str]) -> str:
    """The channels' one declared unit ("" when none is declared, or they differ)."""
    declared = {u.strip() for u in units if u and u.strip()}
    return declared.pop() if len(declared) == 1 else ""


def factor_to(units: Sequence[str], table: dict[str, float]) -> float:
    """The factor that turns the channels' common unit into the model unit of ``table``
    (1.0 when no known unit is declared)."""
    return table.get(common_unit(units).lower(), 1.0)
