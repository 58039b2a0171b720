# The README's two commands: `make demo` and `make test`. Both build the virtual
# environment and make sure PostgreSQL server binaries are present first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PG_PACKAGES := postgresql postgresql-contrib

.PHONY: demo test lint bench venv postgres-server dashboard superset superset-venv clean

demo: venv postgres-server
	$(PY) -m runner demo

test: venv postgres-server
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(PY) -m ruff check .

bench: venv postgres-server
	$(PY) -m bench $(BENCH_ARGS)

dashboard: venv postgres-server
	$(PY) -m runner dashboard

# Apache Superset in its own environment (never the runtime's), then bound to 127.0.0.1
# with the bundle imported (runner/bi/superset/start.py; SUPERSET_ARGS="--port 8089").
SUPERSET_VENV := runner/bi/superset/.venv

superset: venv postgres-server superset-venv
	$(PY) -m runner migrate
	$(PY) -m runner.bi.superset.start $(SUPERSET_ARGS)

superset-venv: $(SUPERSET_VENV)/.installed

$(SUPERSET_VENV)/.installed: runner/bi/superset/requirements.txt
	test -x $(SUPERSET_VENV)/bin/python || $(PYTHON) -m venv $(SUPERSET_VENV)
	$(SUPERSET_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
	    -r runner/bi/superset/requirements.txt
	touch $@

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# PostgreSQL server binaries (initdb, pg_ctl): installed with apt-get when missing and we
# are root on a Debian-like system; otherwise stop and say what to install.
postgres-server:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null \
	    || { command -v pg_config >/dev/null && test -x "$$(pg_config --bindir)/initdb"; }; then \
	  exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing PostgreSQL server packages: $(PG_PACKAGES)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(PG_PACKAGES); \
	else \
	  echo "PostgreSQL server binaries not found. Install them, e.g.:"; \
	  echo "  sudo apt-get install $(PG_PACKAGES)      (Debian/Ubuntu)"; \
	  echo "  sudo dnf install postgresql-server postgresql-contrib   (Fedora/RHEL)"; \
	  echo "  brew install postgresql@15                  (macOS)"; \
	  echo "or set DATABASE_URL to an existing PostgreSQL server."; \
	  exit 1; \
	fi

clean:
	-$(PY) -m runner db stop
	rm -rf $(VENV) .pgdata reports $(SUPERSET_VENV) runner/bi/superset/.home
