"""Research code: pretraining studies, the evaluation protocol, baselines, splits, the choices
made per test subject, reports and plots (`kneegui train`, `kneegui evaluate`).

It may import the product (:mod:`kneegui.model`, :mod:`kneegui.adaptation`); nothing in the
product imports it (an import-linter contract), and the app bundle leaves it out. Its own
dependencies (matplotlib, psutil) live in the ``research`` extra.
"""
