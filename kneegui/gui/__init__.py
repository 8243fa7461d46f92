"""KneeGUI gui package."""
