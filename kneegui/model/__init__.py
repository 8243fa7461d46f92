"""KneeGUI model package."""
