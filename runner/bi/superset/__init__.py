"""Apache Superset: the importable bundle (bundle.py), its configuration
(superset_config.py) and ``make superset`` (start.py). Superset runs in its own virtual
environment (runner/bi/superset/.venv, from runner/bi/superset/requirements.txt), never the
runtime's."""
