"""KneeGUI recording package."""
