"""A simulated lab: replays a real UCI gait recording as live LSL EMG + knee-angle streams.

Two outlets, pushed from one thread in chunks (default 10 ms) paced by the LSL clock:

* EMG: type ``EMG``, 4 channels RF, BF, VM, ST in mV, ``fs * speed`` Hz, float32;
* knee angle: type ``Angle``, 1 channel ``knee_flexion`` in degrees (flexion positive,
  0 = extended, as normalised by :func:`kneegui.datasets.uci.read_uci_file`), same rate.

Both carry ``desc/channels`` and ``desc/acquisition`` (source file, dataset citation, licence).
Sample ``k`` (counted over all loops) is stamped ``t_start + k / (fs * speed)``, so timestamps
never jump, also across loops. At ``speed`` != 1 the data plays faster or slower and the
nominal rate says so (1000 Hz data at speed 2 is a 2000 Hz stream).

Looping without a jump in the signal: the loop runs from the start of the first detected gait
cycle to the end of the last one (:class:`kneegui.dsp.GaitSegmenter`: both are the same gait
phase, the knee rising through 30 degrees of flexion), so the angle continues smoothly. The
first pass starts at the beginning of the file. Recordings without a detected gait cycle
(standing, sitting) loop between the pair of samples - start in the first fifth, end in the
last third - whose angle and angular velocity match best. No sample is modified: the
published values equal the file's.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np

from kneegui.datasets.uci import UciRecording, read_uci_file
from kneegui.dsp import GaitSegmenter

#: Name of the shipped clip inside ``resources/``.
DEFAULT_CLIP = Path("demo_gait") / "4Amar.txt"
DATASET_CITATION = (
    "Sanchez, O. & Sotelo, J. (2014). EMG dataset in Lower Limb. UCI Machine Learning "
    "Repository. https://doi.org/10.24432/C5ZW3P (CC BY 4.0)"
)


def default_clip() -> Path:
    """The shipped gait clip (``resources/demo_gait/4Amar.txt``)."""
    from kneegui.paths import resources_dir

    return resources_dir() / DEFAULT_CLIP


def find_loop(angle: np.ndarray, fs: float) -> tuple[int, int]:
    """``(start, end)`` sample indices of a loop whose ends are at the same gait phase."""
    n = angle.shape[0]
    cycles = GaitSegmenter(fs).segment(angle)
    if cycles and cycles[-1].end > cycles[0].start:
        return int(cycles[0].start), int(cycles[-1].end)
    if n < 10:
        return 0, n
    a = angle.astype(np.float64)
    velocity = np.gradient(a) * fs  # deg/s
    step = max(1, n // 2000)  # at most ~2000 x ~3300 candidate pairs
    starts = np.arange(0, n // 5, step)
    ends = np.arange(2 * n // 3, n, step)
    # cost of jumping from sample end-1 to sample start: angle and velocity mismatch
    cost = np.abs(a[ends - 1][None, :] - a[starts][:, None]) + 0.02 * np.abs(
        velocity[ends - 1][None, :] - velocity[starts][:, None]
    )
    i, j = np.unravel_index(int(np.argmin(cost)), cost.shape)
    return int(starts[i]), int(ends[j])


class SimulatedLab:
    """Publishes a UCI recording as EMG + knee-angle LSL streams in real time."""

    def __init__(
        self,
        source: str | Path | None = None,
        loop: bool = True,
        speed: float = 1.0,
        *,
        source_id_prefix: str = "kneegui-sim",
        name_prefix: str = "KneeGUI-Sim",
        chunk_seconds: float = 0.01,
        duration: float | None = None,
    ):
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be a finite number > 0, got {speed}")
        if not (math.isfinite(chunk_seconds) and chunk_seconds > 0):
            raise ValueError(f"chunk length must be > 0 s, got {chunk_seconds}")
        if duration is not None and not (math.isfinite(duration) and duration > 0):
            raise ValueError(f"duration must be a finite number of seconds > 0, got {duration}")
        self.source = Path(source) if source is not None else default_clip()
        if self.source.is_dir():
            examples = sorted(self.source.glob("**/*mar.txt"))[:1]
            hint = f" such as {examples[0]}" if examples else " (e.g. .../A_TXT/3Amar.txt)"
            raise FileNotFoundError(
                f"simulation source {self.source} is a folder; give one UCI TXT file{hint}")
        if not self.source.is_file():
            raise FileNotFoundError(
                f"simulation source {self.source} does not exist; give a UCI TXT file "
                "(e.g. .../A_TXT/3Amar.txt)"
            )
        self.recording: UciRecording = read_uci_file(self.source)
        self.loop = loop
        self.speed = float(speed)
        self.rate = self.recording.fs * self.speed
        self.chunk = max(1, int(round(self.rate * chunk_seconds)))
        self.duration = duration
        self.loop_start, self.loop_end = find_loop(self.recording.angle, self.recording.fs)
        self.emg_source_id = f"{source_id_prefix}-emg"
        self.angle_source_id = f"{source_id_prefix}-angle"
        self.emg_name = f"{name_prefix}-EMG"
        self.angle_name = f"{name_prefix}-KneeAngle"
        self._emg_outlet = None
        self._angle_outlet = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.samples_sent = 0
        self.loops_completed = 0
        self.t_start: float | None = None
        self.last_error: str | None = None

    @property
    def source_ids(self) -> list[str]:
        return [self.emg_source_id, self.angle_source_id]

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> SimulatedLab:
        """Create both outlets (discoverable from now on) and start publishing."""
        if self.running:
            return self
        import pylsl

        self._emg_outlet = pylsl.StreamOutlet(self._emg_info(), chunk_size=0, max_buffered=60)
        self._angle_outlet = pylsl.StreamOutlet(self._angle_info(), chunk_size=0, max_buffered=60)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="kneegui-simulated-lab", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop publishing and remove the outlets from the network."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        self._thread = None
        self._emg_outlet = None
        self._angle_outlet = None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until publishing ends (end of file without loop, or duration); True if ended."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def __enter__(self) -> SimulatedLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ stream metadata
    def _common_desc(self, info, channels: list[tuple[str, str, str]]) -> None:
        desc = info.desc()
        chans = desc.append_child("channels")
        for label, unit, ctype in channels:
            ch = chans.append_child("channel")
            ch.append_child_value("label", label)
            ch.append_child_value("unit", unit)
            ch.append_child_value("type", ctype)
        acq = desc.append_child("acquisition")
        acq.append_child_value("manufacturer", "KneeGUI")
        acq.append_child_value("model", "simulated lab (replay of a real recording)")
        acq.append_child_value("source_file", self.source.name)
        acq.append_child_value("dataset", DATASET_CITATION)
        acq.append_child_value("original_device", "Biometrics DataLOG MWX8, 14 bit, 1000 Hz")
        acq.append_child_value("filters", "none (raw)")
        acq.append_child_value("speed", f"{self.speed:g}")
        acq.append_child_value("loop", "yes" if self.loop else "no")

    def _emg_info(self):
        import pylsl

        info = pylsl.StreamInfo(self.emg_name, "EMG", 4, self.rate, "float32", self.emg_source_id)
        labels = self.recording.channel_labels
        self._common_desc(info, [(label, "mV", "EMG") for label in labels])
        return info

    def _angle_info(self):
        import pylsl

        info = pylsl.StreamInfo(
            self.angle_name, "Angle", 1, self.rate, "float32", self.angle_source_id
        )
        self._common_desc(info, [("knee_flexion", "degrees", "Angle")])
        info.desc().child("channels").child("channel").append_child_value(
            "convention", "flexion positive, 0 = extended"
        )
        return info

    # ------------------------------------------------------------------ publishing
    def _indices(self):
        """Endless (or single-pass) sequence of sample-index chunks into the recording."""
        n = self.recording.n_samples
        pos = 0
        end = self.loop_end if self.loop else n
        while True:
            take = min(self.chunk, end - pos)
            if take <= 0:
                if not self.loop:
                    return
                pos, self.loops_completed = self.loop_start, self.loops_completed + 1
                continue
            yield np.arange(pos, pos + take)
            pos += take

    def _run(self) -> None:
        import pylsl

        try:
            emg = self.recording.emg
            angle = self.recording.angle.reshape(-1, 1)
            t0 = pylsl.local_clock() + 0.05
            self.t_start = t0
            limit = None if self.duration is None else int(round(self.duration * self.rate))
            k = 0
            for idx in self._indices():
                if self._stop.is_set():
                    return
                if limit is not None and k >= limit:
                    return
                if limit is not None:
                    idx = idx[: limit - k]
                stamp = t0 + (k + idx.shape[0] - 1) / self.rate  # of the chunk's last sample
                delay = stamp - pylsl.local_clock()
                if delay > 0:
                    self._stop.wait(delay)
                # one stamp per chunk: liblsl derives the others from the nominal rate
                self._emg_outlet.push_chunk(emg[idx], stamp)
                self._angle_outlet.push_chunk(angle[idx], stamp)
                k += idx.shape[0]
                with self._lock:
                    self.samples_sent = k
        except Exception as exc:  # noqa: BLE001 - surfaced through last_error
            self.last_error = f"{type(exc).__name__}: {exc}"
