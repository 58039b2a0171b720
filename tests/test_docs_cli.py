"""The options `--help` prints are the options the docs' tables list, command by command.

`python -m runner`: the table of docs/operations.md, "Command reference" (a row per option,
the command in the first cell of its first row; "every command" for the global ones).
`python -m generator`: the options table of docs/generator.md. A new option fails this
test until it is documented, and a documented option that no longer exists fails it too.
README.md's command table names every command, and every `python -m runner ...` or
`python -m generator ...` quoted in the prose with concrete arguments parses.
"""

from __future__ import annotations

import argparse
import re
import shlex

from generator.__main__ import build_parser as generator_parser
from runner.cli import build_parser as runner_parser
from runner.config import PROJECT_ROOT

OPTION = re.compile(r"`(-[-a-z]+)")
HELP = {"-h", "--help"}


def help_options(parser: argparse.ArgumentParser) -> set[str]:
    """Option strings as `--help` prints them (-h/--help left out)."""
    text = parser.format_help()
    options = {opt for act in parser._actions for opt in act.option_strings}  # noqa: SLF001
    printed = {opt for opt in options if re.search(rf"(?<![-\w]){re.escape(opt)}\b", text)}
    assert printed == options, f"--help does not print {sorted(options - printed)}"
    return options - HELP


def runner_commands() -> dict[str, argparse.ArgumentParser]:
    parser = runner_parser()
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return dict(action.choices)
    raise AssertionError("python -m runner has no commands")


def section(path: str, heading: str) -> str:
    text = (PROJECT_ROOT / path).read_text(encoding="utf-8")
    assert heading in text, f"{path} has no section {heading!r}"
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


def documented_runner_options() -> dict[str, set[str]]:
    """{command: options} of the reference table; "" holds the options of every command."""
    table: dict[str, set[str]] = {}
    command = None
    for line in section("docs/operations.md", "## Command reference").splitlines():
        if not line.startswith("| ") or line.startswith(("| command", "|---")):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
        first = cells[0]
        if first:
            command = "" if first == "every command" else re.match(r"`([a-z]+)", first).group(1)
        table.setdefault(command, set()).update(OPTION.findall(cells[1]))
    return table


def test_every_runner_command_and_option_is_in_the_command_reference() -> None:
    documented = documented_runner_options()
    commands = runner_commands()
    assert sorted(set(documented) - {""}) == sorted(commands), (
        "docs/operations.md 'Command reference' lists other commands than `--help`"
    )
    top = help_options(runner_parser())
    assert documented[""] == top
    for name, parser in commands.items():
        assert documented[name] | documented[""] == help_options(parser), (
            f"`python -m runner {name} --help` and docs/operations.md 'Command reference' differ"
        )


def test_the_readme_lists_every_runner_command() -> None:
    rows = section("README.md", "## Everyday commands").splitlines()
    listed = {name for row in rows if row.startswith("| `")
              for name in re.findall(r"^`([a-z]+)", row.split("|")[1].strip())}
    assert listed == set(runner_commands())


def test_every_generator_option_is_in_the_options_table_of_generator_md() -> None:
    rows = section("docs/generator.md", "## Options").splitlines()
    documented = {m.group(1) for row in rows if (m := re.match(r"^\| `(-[-a-z]+)", row))}
    assert documented == help_options(generator_parser())


def test_verbose_is_accepted_before_and_after_the_command() -> None:
    parser = runner_parser()
    assert parser.parse_args(["run", "-v"]).verbose is True
    assert parser.parse_args(["-v", "run"]).verbose is True
    assert parser.parse_args(["status", "--json"]).verbose is False


# -- commands quoted in the prose ---------------------------------------------------------------

INLINE = re.compile(r"`python -m (runner|generator)((?: [^`|\[\]]*)?)`")
PLACEHOLDER = re.compile(r"\b[A-Z][A-Z_]+\b|\.\.\.")


def inline_commands() -> list[tuple[str, str, list[str]]]:
    """(where, program, arguments) of every `python -m runner|generator ...` code span of
    README.md and docs/*.md that names concrete arguments (no placeholder, no alternatives,
    no optional brackets, no shell pipeline)."""
    found = []
    for path in [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for match in INLINE.finditer(text):
            arguments = match.group(2).strip()
            if PLACEHOLDER.search(arguments) or re.search(r"[;&$<>]", arguments):
                continue
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{path.relative_to(PROJECT_ROOT)}:{line}", match.group(1),
                          shlex.split(arguments)))
    return found


def test_every_command_quoted_in_the_prose_parses() -> None:
    commands = inline_commands()
    assert len(commands) >= 30
    parsers = {"runner": runner_parser, "generator": generator_parser}
    refused = []
    for where, program, arguments in commands:
        if program == "runner" and len(arguments) <= 1:
            # `python -m runner` or `python -m runner erase` names the program or a command
            assert not arguments or arguments[0] in runner_commands(), where
            continue
        try:
            parsers[program]().parse_args(arguments)
        except SystemExit as stop:
            if stop.code != 0:  # --help exits 0
                refused.append(f"{where}: python -m {program} {' '.join(arguments)}")
    assert refused == []
