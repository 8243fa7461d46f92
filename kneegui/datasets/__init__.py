"""KneeGUI datasets package."""
