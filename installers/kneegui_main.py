"""Entry script of the bundled `kneegui` executable (PyInstaller runs this)."""

import multiprocessing
import sys

from kneegui.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # child processes of a frozen app re-enter here
    sys.exit(main())
