"""Build the KneeGUI one-folder bundle with PyInstaller and package it.

    python installers/build.py [--if-needed]

Linux: dist/kneegui-<version>-linux-x86_64.tar.gz and dist/kneegui_<version>_amd64.deb.
Windows / macOS: dist/kneegui-<version>-<os>-<arch>.zip (see installers/README.md: not run here).
`--if-needed` reuses the artefacts when no input (code, resources, models, installers,
installed packages) changed since they were built. Run it with the project's venv Python.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as metadata
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTALLERS = ROOT / "installers"
RESOURCES = ROOT / "resources"
WORK = ROOT / "build" / "pyinstaller"
BUNDLE = WORK / "dist" / "kneegui"  # the one-folder bundle PyInstaller writes
DIST = ROOT / "dist"
FINGERPRINT = WORK / "inputs.sha256"
INPUT_DIRS = ("kneegui", "resources", "models", "installers")


def version() -> str:
    """The package version, read from kneegui/__init__.py without importing the app."""
    for line in (ROOT / "kneegui" / "__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise SystemExit("no __version__ in kneegui/__init__.py")


def artefacts(ver: str) -> list[Path]:
    """The files this platform's build produces."""
    if sys.platform.startswith("linux"):
        return [DIST / f"kneegui-{ver}-linux-x86_64.tar.gz", DIST / f"kneegui_{ver}_amd64.deb"]
    name = "windows" if sys.platform == "win32" else "macos"
    return [DIST / f"kneegui-{ver}-{name}-{platform.machine().lower()}.zip"]


def ensure_pyinstaller() -> None:
    """Install the `installer` extra pinned in pyproject.toml unless it is already there."""
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["installer"]
    missing = []
    for pin in pins:
        name, wanted = pin.split("==")
        try:
            if metadata.version(name) != wanted:
                missing.append(pin)
        except metadata.PackageNotFoundError:
            missing.append(pin)
    if missing:
        print(f"installing {' '.join(missing)}", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing], check=True)


def input_fingerprint() -> str:
    """Hash of every build input: source files, data, spec, and installed package versions."""
    h = hashlib.sha256()
    files = [ROOT / "pyproject.toml"]
    for folder in INPUT_DIRS:
        files += [p for p in (ROOT / folder).rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts]
    for path in sorted(files):
        h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    dists = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions())
    h.update("\n".join(dists + [sys.version]).encode())
    return h.hexdigest()


def run_pyinstaller() -> None:
    """Analyse and collect the app into BUNDLE (slow: torch analysis takes minutes)."""
    cmd = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
           "--workpath", str(WORK / "work"), "--distpath", str(WORK / "dist"),
           str(INSTALLERS / "kneegui.spec")]
    print("+ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def make_tarball(out: Path, top: str) -> None:
    """gzip -1 tarball of the bundle under the folder name `top` (fast; CI time matters)."""
    tmp = out.with_suffix(".partial")
    with tarfile.open(tmp, "w:gz", compresslevel=1) as tar:
        tar.add(BUNDLE, arcname=top, filter=_root_owned)
    tmp.replace(out)


def _installed_size_kib(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if not p.is_dir()) // 1024 + 1


def make_deb(out: Path, ver: str) -> None:
    """Debian package: bundle in /opt/kneegui, /usr/bin/kneegui, desktop entry and icons."""
    stage = WORK / "deb"
    shutil.rmtree(stage, ignore_errors=True)
    opt = stage / "opt" / "kneegui"
    shutil.copytree(BUNDLE, opt, symlinks=True, copy_function=_link_or_copy)
    (stage / "usr" / "bin").mkdir(parents=True)
    # Relative, so the launcher also works in a `dpkg-deb -x` tree (and the bootloader
    # resolves its real location through /proc/self/exe).
    (stage / "usr" / "bin" / "kneegui").symlink_to("../../opt/kneegui/kneegui")
    share = stage / "usr" / "share"
    _install(RESOURCES / "kneegui.desktop", share / "applications" / "kneegui.desktop")
    _install(RESOURCES / "kneegui.svg", share / "icons/hicolor/scalable/apps/kneegui.svg")
    _install(RESOURCES / "kneegui.png", share / "icons/hicolor/256x256/apps/kneegui.png")
    _install(INSTALLERS / "debian" / "copyright", share / "doc" / "kneegui" / "copyright")
    control = (INSTALLERS / "debian" / "control.in").read_text().format(
        version=ver, installed_size=_installed_size_kib(stage))
    (stage / "DEBIAN").mkdir(mode=0o755)
    (stage / "DEBIAN" / "control").write_text(control)
    tmp = out.with_suffix(".partial")
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "--build",
                    str(stage), str(tmp)], check=True, stdout=subprocess.DEVNULL)
    tmp.replace(out)
    shutil.rmtree(stage)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _install(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)
    dst.chmod(0o644)


def make_zip(out: Path) -> None:
    """Zip of the bundle folder (Windows) or of KneeGUI.app (macOS)."""
    src = WORK / "dist" / ("KneeGUI.app" if sys.platform == "darwin" else "kneegui")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for path in sorted(src.rglob("*")):
            zf.write(path, Path(src.name) / path.relative_to(src))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--if-needed", action="store_true",
                        help="reuse existing artefacts when no build input changed")
    args = parser.parse_args(argv)
    ver = version()
    outputs = artefacts(ver)
    ensure_pyinstaller()
    fingerprint = input_fingerprint()
    if (args.if_needed and all(p.exists() for p in outputs) and BUNDLE.is_dir()
            and FINGERPRINT.exists() and FINGERPRINT.read_text() == fingerprint):
        print("installer artefacts are up to date: " + ", ".join(map(str, outputs)))
        return 0
    if sys.platform.startswith("linux") and shutil.which("dpkg-deb") is None:
        raise SystemExit("dpkg-deb not found: install the `dpkg` package to build the .deb")
    FINGERPRINT.unlink(missing_ok=True)
    DIST.mkdir(exist_ok=True)
    t0 = time.monotonic()
    run_pyinstaller()
    t1 = time.monotonic()
    for out in outputs:
        if out.suffix == ".deb":
            make_deb(out, ver)
        elif out.name.endswith(".tar.gz"):
            make_tarball(out, f"kneegui-{ver}")
        else:
            make_zip(out)
    t2 = time.monotonic()
    FINGERPRINT.write_text(fingerprint)
    print(f"PyInstaller {t1 - t0:.0f} s, packaging {t2 - t1:.0f} s")
    for out in outputs:
        print(f"{out}  {out.stat().st_size / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
