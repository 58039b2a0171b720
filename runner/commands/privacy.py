"""Commands about personal data: ``erase CUSTOMER_ID --reference TEXT``.

The command is a thin shell around ``CALL etl.erase_customer(id, reference)``
(procedures/90_pipeline/erase_customer.sql), which does the whole erasure in one
transaction; the database decides and words every outcome, the command prints it and maps
it to an exit code. Exit codes: 0 erased (or erased before: nothing changed), 2 refused
(unknown customer id, empty reference, no privilege), 75 a pipeline run holds the lock (try
again when it ends).
"""

from __future__ import annotations

import argparse
import logging
import sys

import psycopg2
import psycopg2.errors

from runner.config import Config
from runner.db import connect, database_url
from runner.exitcodes import EXIT_BUSY, EXIT_OK, EXIT_REFUSED

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    erase = subparsers.add_parser(
        "erase", help="erase a customer's identifiers from every layer (GDPR art. 17)",
        description="CALL etl.erase_customer(CUSTOMER_ID, REFERENCE): names, e-mail "
        "addresses and phone numbers of the customer leave staging, the quarantine, "
        "production and every dim_customer version in one transaction; figures and history "
        "stay identical; listed in etl.v_erasures (docs/privacy.md). Needs the tables' owner, "
        "a superuser, or a role granted EXECUTE on it. Exit codes: 0 erased (or already "
        "erased), 3 refused (unknown id, empty reference, no privilege), 75 a pipeline run "
        "holds the lock.",
    )
    erase.add_argument("customer_id", type=int, help="the customer id to erase")
    erase.add_argument("--reference", required=True,
                       help="the request's ticket or reference (no personal data in it)")
    erase.set_defaults(handler=run_erase)


def run_erase(args: argparse.Namespace, config: Config) -> int:
    conn = connect(database_url(config), autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("call etl.erase_customer(%s, %s)", (args.customer_id, args.reference))
        for notice in conn.notices:
            print(notice.strip().removeprefix("NOTICE:").strip())
        return EXIT_OK
    except psycopg2.errors.LockNotAvailable as error:
        print(f"{error.diag.message_primary} ({error.diag.message_hint})", file=sys.stderr)
        return EXIT_BUSY
    except (psycopg2.errors.NoDataFound, psycopg2.errors.InvalidParameterValue,
            psycopg2.errors.InsufficientPrivilege) as error:
        print(error.diag.message_primary, file=sys.stderr)
        return EXIT_REFUSED
    finally:
        conn.close()
