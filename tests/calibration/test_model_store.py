"""SubjectModelStore: per-user folder, listing shipped + subject models, load, delete, activate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kneegui.calibration.store import (
    ModelStoreError,
    SubjectModelStore,
    default_subject_model_dir,
)


def _tiny_model(name: str, subject: str | None = None, created: str | None = None):
    import torch

    from kneegui.model.card import Normalisation
    from kneegui.model.config import KneeNetConfig, channel_names
    from kneegui.model.features import SubjectNorm
    from kneegui.model.io import LoadedModel, ModelCard
    from kneegui.model.network import KneeNet

    torch.manual_seed(0)
    channels = channel_names("emg+angle")
    config = KneeNetConfig(n_inputs=len(channels), window=20, conv_channels=4, lstm_hidden=8,
                           attention_dim=4, head_hidden=8)
    c = len(channels)
    card = ModelCard(
        name=name,
        input_set="emg+angle",
        config=config,
        norm=Normalisation(
            input_mean=(0.0,) * c, input_std=(1.0,) * c,
            target_mean=(0.0,) * 50, target_std=(1.0,) * 50,
            subject=SubjectNorm(emg_scale=[1.0] * 4, angle_mean=20.0, angle_std=15.0),
        ),
        window=20,
        channels=tuple(channels),
        subject=subject,
        created=created,
    )
    return LoadedModel(net=KneeNet(config), card=card)


@pytest.fixture
def store(tmp_path: Path) -> SubjectModelStore:
    from kneegui.model.io import save_model

    shipped = tmp_path / "shipped"
    save_model(shipped / "kneenet-emg-angle", _tiny_model("kneenet-emg-angle"))
    return SubjectModelStore(root=tmp_path / "user", shipped_dir=shipped)


def test_env_override_and_platform_default(monkeypatch, tmp_path):
    monkeypatch.delenv("KNEEGUI_SUBJECT_MODELS_DIR", raising=False)
    monkeypatch.setenv("KNEEGUI_MODEL_DIR", str(tmp_path / "x"))
    assert default_subject_model_dir() == tmp_path / "x"
    assert SubjectModelStore().root == tmp_path / "x"
    monkeypatch.delenv("KNEEGUI_MODEL_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_subject_model_dir() == tmp_path / "data" / "kneegui" / "models"


def test_save_list_load_activate_delete(store: SubjectModelStore):
    import torch

    assert [e.kind for e in store.list()] == ["shipped"]
    model = _tiny_model("S07-kneenet", subject="S07", created="2026-01-01T00:00:00+00:00")
    stem = store.save(model, "S07")
    assert stem.parent == store.root and stem.name.startswith("S07_")
    second = store.save(_tiny_model("S07-kneenet", subject="S07", created="2026-02-01T00:00:00"),
                        "S07")
    assert second != stem  # never overwrites

    entries = store.list()
    assert [e.kind for e in entries] == ["shipped", "subject", "subject"]
    assert entries[1].path == second  # newest subject model first
    assert [e.path for e in store.list(subject="S07")] == [second, stem]
    assert "S07" in entries[1].label

    loaded = store.load(entries[2])
    for a, b in zip(loaded.net.state_dict().values(), model.net.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)

    assert store.active_path() is None
    store.set_active(stem.with_name(stem.name + ".safetensors"))
    assert store.active_path() == stem.resolve()
    assert store.find(stem.name).path == stem

    store.delete(stem)
    assert not stem.with_name(stem.name + ".json").exists()
    assert store.active_path() is None  # the deleted model is no longer active
    assert len(store.list(kind="subject")) == 1


def test_shipped_models_cannot_be_deleted_and_unknown_names_are_explained(store):
    shipped = store.list(kind="shipped")[0]
    with pytest.raises(ModelStoreError, match="shipped model and cannot be deleted"):
        store.delete(shipped)
    assert shipped.path.with_name(shipped.path.name + ".safetensors").exists()
    with pytest.raises(ModelStoreError, match="no model named 'nope'.*kneenet-emg-angle"):
        store.find("nope")


def test_corrupt_card_is_listed_with_its_error_not_hidden(store):
    store.root.mkdir(parents=True)
    (store.root / "broken.json").write_text("{not json")
    (store.root / "broken.safetensors").write_bytes(b"\0" * 8)
    (store.root / "active.json").write_text(json.dumps({"path": "/nowhere/x"}))
    broken = [e for e in store.list() if e.path.name == "broken"]
    assert broken and "not a readable JSON model card" in broken[0].error
    assert store.active_path() is None
