"""The exit codes of every command, in one table (docs/operations.md, "Exit codes").

A code means the same kind of outcome whatever the command; where a command has an outcome
of its own (``status``'s verdicts, ``db status``), it takes a code no other outcome of that
command uses. 2 is argparse's own code for wrong arguments, so no command returns it for
anything else: a refusal is 3, as for ``run``.
"""

from __future__ import annotations

EXIT_OK = 0  # done: every pending batch processed; healthy; loaded; erased; cluster running
EXIT_FAILED = 1  # run, demo: a step failed or the database could not be reached;
#                  status: the last finished run failed or was abandoned; ingest: no such path
EXIT_USAGE = 2  # wrong command-line arguments or option values (argparse's code)
EXIT_REFUSED = 3  # run, demo, ingest: a batch was refused (the batches before it are kept);
#                   erase: the request was refused (unknown id, empty reference, no privilege)
EXIT_STALE = 3  # status: the last successful run or the newest sale is older than its limit
EXIT_CLUSTER_STOPPED = 3  # db status: the embedded cluster is not running
EXIT_EMPTY = 4  # status: no successful run and no sale yet (a fresh warehouse)
EXIT_UNAVAILABLE = 5  # status: the database cannot be reached, or is not migrated
EXIT_HELD = 6  # run, demo: a batch is held by a batch check (etl.release_batch /
#                etl.discard_batch end the hold); status: a batch is held
EXIT_BUSY = 75  # run, demo, erase: a pipeline run holds the lock (EX_TEMPFAIL: try again)
EXIT_STOPPED = 130  # SIGINT/SIGTERM: run and demo finish the current step first
