"""Helpers for the acquisition tests: unique LSL names and outlets that clean up after a test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence

import pylsl
import pytest


@pytest.fixture
def uid() -> str:
    """A short unique tag: other engineers run LSL tests on this machine at the same time."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def make_outlet() -> Iterator[Callable[..., pylsl.StreamOutlet]]:
    """Create outlets (with optional labels/units); all are destroyed at teardown."""
    outlets: list[pylsl.StreamOutlet] = []

    def factory(
        name: str,
        stype: str,
        n_channels: int,
        rate: float,
        fmt: str,
        source_id: str,
        labels: Sequence[str] | None = None,
        units: Sequence[str] | None = None,
    ) -> pylsl.StreamOutlet:
        info = pylsl.StreamInfo(name, stype, n_channels, rate, fmt, source_id)
        if labels is not None:
            info.set_channel_labels(list(labels))
        if units is not None:
            info.set_channel_units(list(units))
        outlet = pylsl.StreamOutlet(info)
        outlets.append(outlet)
        return outlet

    yield factory
    outlets.clear()


@pytest.fixture
def resolve() -> Callable[[str], object]:
    """Resolve one stream by source_id, failing clearly (generous timeout: the box is busy)."""
    from kneegui.acquisition import resolve_source_id

    def find(source_id: str, timeout: float = 8.0):
        found = resolve_source_id(source_id, timeout=timeout)
        assert found, f"stream with source_id {source_id} not found within {timeout} s"
        return found[0]

    return find
