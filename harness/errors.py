"""Errors a user can cause and must be told about plainly (never as a traceback)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a pack, a suite or a command line, with where it is."""

    message: str
    file: str | None = None
    line: int | None = None
    rule: str | None = None

    def __str__(self) -> str:
        where = self.file or ""
        if self.line is not None:
            where += f":{self.line}"
        prefix = f"{where}: " if where else ""
        rule = f"[{self.rule}] " if self.rule else ""
        return f"{prefix}{rule}{self.message}"


class ConfigurationError(Exception):
    """A pack, suite or option the user gave is wrong; carries every problem found."""

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
