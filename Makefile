# KneeGUI — the two quick-start commands are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_ARGS ?=

.PHONY: demo test lint venv bench clean installer installer-test

venv: $(STAMP)

# Reinstall only when pyproject.toml changed (or the venv is new).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,research]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/kneegui demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check kneegui tests benchmarks docs/analysis
	$(BIN)/lint-imports

test: $(STAMP) lint
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

bench: $(STAMP)
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b; done

# Self-contained app bundle (PyInstaller) -> dist/*.tar.gz + dist/*.deb; see installers/README.md.
installer: $(STAMP)
	nice -n 10 $(BIN)/python installers/build.py

# Build (or reuse when up to date), then run the bundle with a clean environment.
installer-test: $(STAMP)
	nice -n 10 $(BIN)/python installers/build.py --if-needed
	$(BIN)/python installers/smoke_test.py

clean:
	rm -rf $(VENV) build dist *.egg-info
