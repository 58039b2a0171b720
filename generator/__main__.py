"""`python -m generator`: write the four CSV files (and manifests) of docs/data-contract.md."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date
from pathlib import Path

from generator.build import generate
from generator.options import (
    DEFAULT_DAYS,
    DEFAULT_ITEMS_PER_ORDER,
    DEFAULT_SCALE,
    DEFAULT_SEED,
    DEFAULT_START,
    MAX_DIRTY,
    SCALES,
    Burst,
    Options,
)

logger = logging.getLogger("generator")
DEFAULT_OUT = Path("data/generated")

DESCRIPTION = """\
Write synthetic e-commerce data as the CSV files of docs/data-contract.md:
customers.csv, products.csv, transactions.csv and transaction_items.csv, plus a
manifest.json per batch that predicts, record by record, what validation rejects.
The same options always give byte-identical files."""

EPILOG = f"""\
presets (customers / products / transactions):
{chr(10).join(f"  {name:<7} {s.customers:>7,} / {s.products:>5,} / {s.transactions:>9,}"
              for name, s in SCALES.items())}

examples:
  python -m generator --out data/demo
  python -m generator --scale medium --batches 12 --dirty 0.01 --out data/monthly
  python -m generator --scale large --batches 10 --dirty 0.01 --out /tmp/x
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m generator",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                        help="output directory, created if missing; files of the same names in "
                             f"it are replaced (default: {DEFAULT_OUT})")
    parser.add_argument("--scale", choices=sorted(SCALES), default=DEFAULT_SCALE,
                        help="size preset; --customers/--products/--transactions override it "
                             f"(default: {DEFAULT_SCALE})")
    parser.add_argument("--customers", type=int, metavar="N",
                        help="number of customers (from the preset when omitted)")
    parser.add_argument("--products", type=int, metavar="N",
                        help="number of products (from the preset when omitted)")
    parser.add_argument("--transactions", type=int, metavar="N",
                        help="number of transactions, i.e. orders (from the preset when omitted)")
    parser.add_argument("--items-per-order", type=float, metavar="X",
                        default=DEFAULT_ITEMS_PER_ORDER,
                        help="mean number of item lines per order, at least 1 "
                             f"(default: {DEFAULT_ITEMS_PER_ORDER:g})")
    parser.add_argument("--start", type=date.fromisoformat, metavar="YYYY-MM-DD",
                        default=DEFAULT_START,
                        help=f"first day of the period (default: {DEFAULT_START}); the period "
                             "must end on or before today (UTC)")
    parser.add_argument("--days", type=int, metavar="N", default=DEFAULT_DAYS,
                        help=f"length of the period in days (default: {DEFAULT_DAYS})")
    parser.add_argument("--batches", type=int, metavar="N", default=1,
                        help="split the period into N deliveries OUT/batch_0001 .. batch_N; "
                             "with 1 the files go into OUT itself (default: 1)")
    parser.add_argument("--initial-share", type=float, metavar="F",
                        help="give the first batch this share of the days (e.g. 0.9) and split "
                             "the rest evenly: an initial load followed by small increments "
                             "(default: all batches equal)")
    parser.add_argument("--seed", type=int, metavar="N", default=DEFAULT_SEED,
                        help=f"random seed; same seed and options, same bytes (default: "
                             f"{DEFAULT_SEED})")
    parser.add_argument("--dirty", type=float, metavar="RATE", default=0.0,
                        help="inject each contract rule's defect, and each valid variant, into "
                             f"about RATE of the rows (0 to {MAX_DIRTY}; default: 0, clean)")
    parser.add_argument("--defect-burst", action="append", default=[],
                        metavar="FILE:RULE:SHARE[:BATCH]",
                        help="a mass defect: in batch BATCH (default: the last), about SHARE of "
                             "FILE's rows break RULE, e.g. "
                             "transaction_items.csv:invalid_amount:0.9 (a batch the pipeline "
                             "holds); repeatable; the other batches' bytes are unchanged")
    parser.add_argument("--locale", default="en_US",
                        help="Faker locale of names, places and phones (default: en_US); a "
                             "tenth of names and places come from other locales")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar and no summary on stderr")
    return parser  # fmt: skip


def options_from(arguments: argparse.Namespace) -> Options:
    scale = SCALES[arguments.scale]
    return Options(
        out=arguments.out,
        customers=scale.customers if arguments.customers is None else arguments.customers,
        products=scale.products if arguments.products is None else arguments.products,
        transactions=(
            scale.transactions if arguments.transactions is None else arguments.transactions
        ),
        items_per_order=arguments.items_per_order,
        start=arguments.start,
        days=arguments.days,
        batches=arguments.batches,
        initial_share=arguments.initial_share,
        seed=arguments.seed,
        dirty=arguments.dirty,
        bursts=tuple(Burst.parse(text) for text in arguments.defect_burst),
        locale=arguments.locale,
        quiet=arguments.quiet,
    )


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if arguments.quiet else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    try:
        report = generate(options_from(arguments))
    except ValueError as error:
        print(f"generator: {error}", file=sys.stderr)
        return 2
    total = sum(report.rows.values())
    rejected = sum(report.rejected.values())
    logger.info(
        "wrote %s rows (%s rejected by the contract) in %s batch(es) under %s",
        f"{total:,}", f"{rejected:,}", len(report.batches), report.out,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
