"""The deployment's logins: the runner as a member of ``warehouse_etl``, BI as a member of
``warehouse_reader`` (``python -m runner logins``).

The migration creates the two group roles (NOLOGIN, revision 0001) and their grants; a role
that can log in needs a password, which a migration cannot know. This command, run by the
migrating superuser after ``alembic upgrade head`` (docker-compose.yml's ``migrate``
service), creates or updates the logins with the passwords of ``WAREHOUSE_RUNNER_PASSWORD``
and ``WAREHOUSE_BI_PASSWORD``. The password is hashed here (SCRAM-SHA-256, through libpq's
PQencryptPasswordConn) so that the clear text never reaches the server or its log. The
logins are never superusers and create nothing; a second call changes only the passwords.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import psycopg2.extensions
from psycopg2 import sql


@dataclass(frozen=True)
class Login:
    name: str
    member_of: str
    password_variable: str


LOGINS: tuple[Login, ...] = (
    Login("warehouse_runner", "warehouse_etl", "WAREHOUSE_RUNNER_PASSWORD"),
    Login("warehouse_bi", "warehouse_reader", "WAREHOUSE_BI_PASSWORD"),
)


def ensure_logins(conn: psycopg2.extensions.connection, passwords: Mapping[str, str]
                  ) -> list[str]:
    """Create or update every login of ``LOGINS`` whose password variable is in
    ``passwords`` (variable -> password); returns what was done, one line per login."""
    done = []
    with conn.cursor() as cur:
        for login in LOGINS:
            password = passwords.get(login.password_variable)
            if not password:
                done.append(f"{login.name}: skipped ({login.password_variable} is not set)")
                continue
            verifier = psycopg2.extensions.encrypt_password(password, login.name, conn,
                                                            "scram-sha-256")
            cur.execute("select 1 from pg_roles where rolname = %s", (login.name,))
            exists = cur.fetchone() is not None
            verb = "alter" if exists else "create"
            cur.execute(sql.SQL(
                "{verb} role {name} login nosuperuser nocreatedb nocreaterole noreplication "
                "inherit password %s").format(verb=sql.SQL(verb),
                                              name=sql.Identifier(login.name)), (verifier,))
            cur.execute(sql.SQL("grant {group} to {name}").format(
                group=sql.Identifier(login.member_of), name=sql.Identifier(login.name)))
            done.append(f"{login.name}: {'updated' if exists else 'created'}, member of "
                        f"{login.member_of}")
    conn.commit()
    return done
