"""Render resources/kneegui.svg to the raster icons the installers use.

Writes resources/kneegui.png (256 px, Linux desktop entry), kneegui.ico (Windows exe) and
kneegui.icns (macOS .app). Run once after editing the SVG:
    QT_QPA_PLATFORM=offscreen .venv/bin/python installers/render_icon.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

RESOURCES = Path(__file__).resolve().parent.parent / "resources"


def render(svg: Path, size: int) -> QImage:
    """The SVG drawn on a transparent square image of `size` pixels."""
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"cannot parse {svg}; fix the SVG and run again")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    return image


def main() -> int:
    app = QGuiApplication(sys.argv[:1])  # noqa: F841  (image plugins need an application)
    svg = RESOURCES / "kneegui.svg"
    for name, size, fmt in (("kneegui.png", 256, "PNG"), ("kneegui.ico", 256, "ICO"),
                            ("kneegui.icns", 512, "ICNS")):
        out = RESOURCES / name
        if not render(svg, size).save(str(out), fmt):
            print(f"could not write {out} ({fmt} image plugin missing?)", file=sys.stderr)
            return 1
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
