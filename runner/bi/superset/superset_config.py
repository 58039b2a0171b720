"""Superset's configuration for ``make superset`` (runner/bi/superset/start.py) and the tests.

Superset reads this file (``SUPERSET_CONFIG_PATH``) and its own home folder
(``SUPERSET_HOME``, set by start.py, default runner/bi/superset/.home): its metadata is a SQLite
database there (Superset's own metadata, not the warehouse), and so is its secret key,
made once by start.py. The server binds to 127.0.0.1 (start.py). The content security
policy allows nothing outside the server itself, so the browser fetches no telemetry image,
map tile or web font: Superset's pages use no network but the server's.
"""

import os
from pathlib import Path

_HOME = Path(os.environ.get("SUPERSET_HOME", Path(__file__).resolve().parent / ".home"))

SQLALCHEMY_DATABASE_URI = f"sqlite:///{_HOME / 'superset.db'}"
SECRET_KEY = (_HOME / "secret_key").read_text(encoding="ascii").strip()
FEATURE_FLAGS = {"DASHBOARD_CROSS_FILTERS": True, "DASHBOARD_NATIVE_FILTERS": True}
CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
TALISMAN_ENABLED = True
TALISMAN_CONFIG = {
    "content_security_policy": {
        "base-uri": ["'self'"],
        "default-src": ["'self'"],
        "img-src": ["'self'", "blob:", "data:"],
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "object-src": "'none'",
        "style-src": ["'self'", "'unsafe-inline'"],
        "font-src": ["'self'", "data:"],
        "script-src": ["'self'", "'strict-dynamic'"],
    },
    "content_security_policy_nonce_in": ["script-src"],
    "force_https": False,
    "session_cookie_secure": False,
}
CONTENT_SECURITY_POLICY_WARNING = False
