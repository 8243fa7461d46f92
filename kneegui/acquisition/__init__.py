"""KneeGUI acquisition package."""
