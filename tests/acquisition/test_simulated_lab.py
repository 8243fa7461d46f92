"""SimulatedLab and `kneegui simulate`/`kneegui streams` on real LSL loopback streams."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from kneegui.acquisition import (
    Hub,
    Role,
    SimulatedLab,
    StreamReader,
    default_clip,
)
from kneegui.acquisition.simulator import find_loop
from kneegui.datasets.uci import read_uci_file
from kneegui.dsp import FilterSettings


def test_shipped_clip_is_a_style_a_gait_recording_with_native_angle():
    rec = read_uci_file(default_clip())
    assert rec.exercise == "mar" and rec.header_style == "A"
    assert rec.angle_native_fs == 1000.0
    assert 20.0 <= rec.n_samples / rec.fs <= 30.0
    start, end = find_loop(rec.angle, rec.fs)
    assert end - start > 15 * rec.fs
    # the loop joins the same gait phase: no jump in the angle
    assert abs(float(rec.angle[end - 1]) - float(rec.angle[start])) < 1.0


def _open(view, role: Role) -> StreamReader:
    reader = StreamReader(view, 40.0, role)
    reader.start()
    assert reader.wait_until_open(3.0)
    return reader


def test_simulated_lab_publishes_the_clip_with_metadata_and_seamless_loop(uid, resolve):
    lab = SimulatedLab(speed=10.0, source_id_prefix=f"sim-{uid}", name_prefix=f"Sim-{uid}")
    rec = lab.recording
    lab.start()
    try:
        emg_view = resolve(lab.emg_source_id)
        angle_view = resolve(lab.angle_source_id)
        emg, angle = _open(emg_view, Role.EMG), _open(angle_view, Role.KNEE_ANGLE)
        # 10x speed: the loop end (21.2 s of data) passes after ~2.1 s
        need = lab.loop_end + 3000
        deadline = time.monotonic() + 6.0
        while time.monotonic() < deadline and lab.samples_sent < need:
            time.sleep(0.05)
        time.sleep(0.2)
        assert emg.status().gaps == 0 and angle.status().gaps == 0
        e_data, e_ts = emg.read_from(0)[:2]
        a_data, a_ts = angle.read_from(0)[:2]
    finally:
        emg.stop()
        angle.stop()
        lab.stop()
    assert lab.last_error is None
    # metadata
    assert (emg_view.type, emg_view.channel_count, emg_view.nominal_srate) == ("EMG", 4, 10000.0)
    assert emg_view.channel_labels == ("RF", "BF", "VM", "ST")
    assert emg_view.channel_units == ("mV",) * 4
    assert "<acquisition>" in emg_view.xml and "10.24432/C5ZW3P" in emg_view.xml
    assert "4Amar.txt" in emg_view.xml
    assert (angle_view.type, angle_view.channel_labels, angle_view.channel_units) == (
        "Angle",
        ("knee_flexion",),
        ("degrees",),
    )
    # the data are the clip's samples, at the positions their timestamps say
    def clip_rows(ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = np.round((ts - lab.t_start) * lab.rate).astype(int)
        np.testing.assert_allclose(ts, lab.t_start + k / lab.rate, atol=5e-6)
        np.testing.assert_array_equal(np.diff(k), 1)  # nothing lost, no stamp jump
        return k, np.where(k < lab.loop_end, k, lab.loop_start + (k - lab.loop_end))

    k, src = clip_rows(e_ts)
    assert k[-1] >= lab.loop_end + 1000
    np.testing.assert_array_equal(e_data, rec.emg[src])
    k_angle, src_angle = clip_rows(a_ts)
    np.testing.assert_array_equal(a_data[:, 0], rec.angle[src_angle])
    # across the loop point the angle moves by no more than within the recording
    i = int(np.flatnonzero(k_angle == lab.loop_end)[0])
    jump = abs(float(a_data[i, 0] - a_data[i - 1, 0]))
    assert jump <= np.abs(np.diff(rec.angle)).max()


def test_hub_aligns_simulated_lab_angle_onto_the_model_grid(uid, resolve):
    lab = SimulatedLab(speed=4.0, source_id_prefix=f"simhub-{uid}", name_prefix=f"SH-{uid}")
    lab.start()
    hub = Hub(model_rate=100.0)
    try:
        hub.assign(Role.EMG, StreamReader(resolve(lab.emg_source_id)))
        hub.assign(Role.KNEE_ANGLE, StreamReader(resolve(lab.angle_source_id)))
        hub.start()
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and hub.aligned_count() < 150:
            time.sleep(0.05)
        frame = hub.latest_aligned(150)
        offsets = [s.clock_offset for s in hub.statuses()]
        # live filter change: a 300-450 Hz band keeps much less of the EMG than 20-450 Hz
        filtered = hub.emg_buffer("filtered")
        broad = np.sqrt(np.mean(filtered.latest_seconds(0.3)[0] ** 2))
        hub.set_filter_settings(FilterSettings(low=300.0, high=450.0))
        t_switch = filtered.last_timestamp()
        time.sleep(0.6)
        narrow_data, narrow_ts = filtered.since(t_switch + 0.1)
        narrow = np.sqrt(np.mean(narrow_data**2))
    finally:
        hub.stop()
        lab.stop()
    assert frame is not None and len(frame) == 150
    bad = np.flatnonzero(~np.isfinite(frame.emg_env).all(axis=1))
    assert bad.size == 0, (bad, frame.t[bad] - frame.t[0], frame.t[-1] - frame.t[0])
    assert np.isfinite(frame.angle).all()
    # angle on the grid = the clip angle interpolated at the grid time
    pos = (frame.t - offsets[1] - lab.t_start) * lab.rate
    expected = np.interp(pos, np.arange(lab.recording.n_samples), lab.recording.angle)
    np.testing.assert_allclose(frame.angle, expected, atol=0.05)
    assert hub.filter_settings.low == 300.0
    assert narrow_ts.size > 1000 and narrow < 0.5 * broad


def _kneegui(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kneegui", *args], capture_output=True, text=True, timeout=timeout
    )


def test_simulate_and_streams_commands(uid):
    # generous times: on a busy lab PC starting the simulator alone can take seconds
    sim = subprocess.Popen(
        [sys.executable, "-m", "kneegui", "simulate", "--duration", "120", "--quiet",
         "--id-prefix", f"cli-{uid}", "--name-prefix", f"Cli-{uid}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        found = []
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline and len(found) < 2:
            listed = _kneegui("streams", "--json", "--timeout", "1")
            assert listed.returncode == 0, listed.stderr
            streams = json.loads(listed.stdout)
            found = [s for s in streams if s["source_id"].startswith(f"cli-{uid}")]
        assert {s["source_id"] for s in found} == {f"cli-{uid}-emg", f"cli-{uid}-angle"}
        emg = next(s for s in found if s["type"] == "EMG")
        assert emg["channel_labels"] == ["RF", "BF", "VM", "ST"]
        assert emg["nominal_srate"] == 1000.0
        for _ in range(3):  # a busy machine may miss an answer within the timeout: retry
            table = _kneegui("streams", "--timeout", "2", "--type", "Angle")
            assert table.returncode == 0
            if f"Cli-{uid}-KneeAngle" in table.stdout:
                break
        assert f"Cli-{uid}-KneeAngle" in table.stdout and "knee_flexion[degrees]" in table.stdout
    finally:
        sim.terminate()  # SIGTERM: the simulator closes its outlets and exits
        try:
            sim.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.communicate()
    assert sim.returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("simulate", "--source", "/nonexistent/3Amar.txt"), "does not exist"),
        (("simulate", "--speed", "0"), "--speed must be > 0"),
        (("streams", "--timeout", "0"), "--timeout must be > 0"),
    ],
)
def test_bad_cli_arguments_give_one_line_errors(args, message):
    out = _kneegui(*args)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr


def test_loop_points_without_gait_cycles_match_angle_and_velocity(uci_dir):
    # sitting leg extensions: no gait cycle is detected, the loop pair is searched instead
    rec = read_uci_file(uci_dir / "A_TXT" / "3Asen.txt")
    start, end = find_loop(rec.angle, rec.fs)
    assert start < rec.n_samples // 5 and end > 2 * rec.n_samples // 3
    assert abs(float(rec.angle[end - 1]) - float(rec.angle[start])) < 0.5
    # a synthetic slow movement whose ends do not match: still a small jump
    t = np.arange(30_000) / 1000.0
    angle = (30 + 25 * np.sin(2 * np.pi * 0.13 * t)).astype(np.float32)
    start, end = find_loop(angle, 1000.0)
    assert abs(float(angle[end - 1]) - float(angle[start])) < 0.2
