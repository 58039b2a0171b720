"""A throwaway login role that is a member of one of the project's group roles, as a person
or a service would connect (roles are cluster-wide: a unique name, dropped afterwards)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import psycopg2.extensions
from psycopg2 import sql


@contextmanager
def login_member(conn: psycopg2.extensions.connection, db_url: str, group: str
                 ) -> Iterator[psycopg2.extensions.connection]:
    """An autocommit connection of a new login in ``group``; the role goes afterwards."""
    role = f"{group.split('_')[-1]}_{uuid.uuid4().hex[:8]}"
    with conn.cursor() as cur:
        cur.execute(sql.SQL("create role {} login in role {}")
                    .format(sql.Identifier(role), sql.Identifier(group)))
    login = psycopg2.connect(db_url, user=role)
    login.autocommit = True
    try:
        yield login
    finally:
        login.close()
        with conn.cursor() as cur:
            cur.execute(sql.SQL("drop owned by {0}; drop role {0}").format(sql.Identifier(role)))
