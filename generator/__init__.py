"""Synthetic e-commerce data for the warehouse: the four CSV files of docs/data-contract.md.

`python -m generator --help` lists the options; `generate(Options(...))` does the same from
Python. Output is deterministic: the same options give byte-identical files and manifests.
"""

from generator.build import Report, generate
from generator.options import SCALES, Options

__all__ = ["SCALES", "Options", "Report", "generate"]
