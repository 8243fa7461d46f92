"""Subcommands of the `kneegui` CLI, one module each (see :mod:`kneegui.cli`)."""
