# The two commands of the README. Each installs what it needs first.
PY ?= python3

.PHONY: run test install install-dev

run: install          ## start the dashboard on the built-in synthetic registry (http://127.0.0.1:8050)
	$(PY) app.py

test: install-dev     ## run every test, browser tests included
	$(PY) -m pytest

install:
	PYTHON=$(PY) scripts/install.sh

install-dev:
	PYTHON=$(PY) scripts/install.sh --dev
