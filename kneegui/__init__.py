"""KneeGUI: live knee-angle prediction from EMG over Lab Streaming Layer."""

__version__ = "0.1.0"
