"""Causal, stateful EMG signal processing shared by the live and the offline paths."""

from kneegui.dsp.chain import (
    ChainOutput,
    EmgFeatureExtractor,
    FilterChain,
    FilterSettings,
    emg_features_offline,
)
from kneegui.dsp.decimate import Decimator, RatePicker
from kneegui.dsp.filters import BandPass, Envelope, MainsNotch
from kneegui.dsp.gait import GaitCycle, GaitCycleCounter, GaitParams, GaitSegmenter
from kneegui.dsp.quality import ChannelQuality, QualityMonitor, QualityThresholds
from kneegui.dsp.sos import NYQUIST_FRACTION, clamp_cutoff

__all__ = [
    "NYQUIST_FRACTION",
    "BandPass",
    "ChainOutput",
    "ChannelQuality",
    "Decimator",
    "EmgFeatureExtractor",
    "Envelope",
    "FilterChain",
    "FilterSettings",
    "GaitCycle",
    "GaitCycleCounter",
    "GaitParams",
    "GaitSegmenter",
    "MainsNotch",
    "QualityMonitor",
    "QualityThresholds",
    "RatePicker",
    "clamp_cutoff",
    "emg_features_offline",
]
