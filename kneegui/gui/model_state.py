"""What the predicting model is, in words an operator reads at a glance: a pretrained model
that is *not* calibrated to the subject, or a model calibrated to a named subject (when, and
how much better it was on the held-back gait cycle). Read from the model card as a dict (the
``card`` of a ``SubjectModelStore`` entry, or ``LiveSession.model_card()``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelState:
    """``kind``: "none" | "pretrained" | "calibrated" | "other-subject"."""

    kind: str
    headline: str  # a few words, e.g. "pretrained — not calibrated to this subject"
    detail: str  # one line with the evidence (subject, date, held-back NMAE before -> after)

    def text(self) -> str:
        return f"{self.headline}: {self.detail}" if self.detail else self.headline


def holdout_change(card: dict[str, Any]) -> tuple[float, float, float, float] | None:
    """(mean NMAE before, after, 500 ms NMAE before, after) on the calibration's held-back
    cycle, as written by the calibration wizard / ``kneegui calibrate``; None if absent."""
    holdout = (card.get("metrics") or {}).get("calibration_holdout") or {}
    before, after = holdout.get("before") or {}, holdout.get("after") or {}
    try:
        return (float(before["mean_nmae"]), float(after["mean_nmae"]),
                float(before["nmae_last"]), float(after["nmae_last"]))
    except (KeyError, TypeError, ValueError):
        return None


def model_state(card: dict[str, Any] | None, subject: str | None = None) -> ModelState:
    """The state of a model with this card for ``subject`` (the subject being recorded, or
    None/"" when not known)."""
    if not card:
        return ModelState("none", "no model", "no predictions; choose a model in the Model panel")
    name = card.get("name", "?")
    model_subject = card.get("subject")
    if not model_subject:
        return ModelState(
            "pretrained", "pretrained — not calibrated to this subject",
            f"{name} (trained on other people; expect larger errors far ahead) · "
            "Model → Calibrate subject… (Ctrl+K)",
        )
    date = str(card.get("created") or "")[:10] or "date unknown"
    parts = [f"{model_subject}, {date}"]
    change = holdout_change(card)
    if change is not None:
        mean_b, mean_a, last_b, last_a = change
        horizons = card.get("horizons") or 50
        step_ms = 1000.0 / float(card.get("model_rate") or 100.0)
        parts.append(
            f"held-back NMAE {100 * mean_b:.1f} → {100 * mean_a:.1f} % (mean 10–"
            f"{horizons * step_ms:.0f} ms), {100 * last_b:.1f} → {100 * last_a:.1f} % at "
            f"{horizons * step_ms:.0f} ms"
        )
    else:
        parts.append("no held-back result in its card")
    detail = f"{name} · " + ", ".join(parts)
    if subject and subject.strip() and subject.strip() != model_subject:
        return ModelState(
            "other-subject",
            f"calibrated to {model_subject} — NOT to {subject.strip()}",
            detail + f" · the Recording panel names subject {subject.strip()}: "
            "calibrate this subject or pick their model",
        )
    return ModelState("calibrated", f"calibrated: {model_subject}", detail)
