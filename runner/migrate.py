"""Alembic, driven from Python: the runner's ``migrate`` and the test harness use this."""

from __future__ import annotations

from alembic.config import Config as AlembicConfig

from alembic import command
from runner.config import PROJECT_ROOT


def alembic_config(url: str) -> AlembicConfig:
    """The project's alembic.ini, pointed at ``url``."""
    config = AlembicConfig(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """``alembic upgrade`` (revisions, then the changed routine files)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """``alembic downgrade``."""
    command.downgrade(alembic_config(url), revision)
