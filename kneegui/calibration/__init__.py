"""KneeGUI calibration package."""
