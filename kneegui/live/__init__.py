"""The live pipeline without Qt: readers + hub, inference worker, prediction outlet, recorder.

`LiveSession` owns what runs during a session; the GUI (and any headless tool) drives it and
only reads its snapshots. Nothing here imports Qt.
"""
