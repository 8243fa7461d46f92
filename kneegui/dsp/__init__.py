"""KneeGUI dsp package."""
