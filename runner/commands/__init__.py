"""The command-line commands, one module per subject: ``db`` and ``migrate`` (db.py),
``ingest`` (ingest.py), ``run``, ``schedule``, ``status`` and ``demo`` (pipeline.py),
``dashboard`` and ``datadict`` (reports.py), ``erase`` (privacy.py). Each registers its
commands with ``register(subparsers)``; runner/cli.py builds the parser from them."""
