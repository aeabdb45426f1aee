"""The one exception type users see.

Every problem caused by the user's input (spec, data, model files, environment) is raised as a
`GeneratorError` with a one-line message that names the file, field or tensor and says what to do.
The CLI prints it without a traceback and exits with `EXIT_USER_ERROR`. A failure at run time
that is not the user's input (the server died, a TensorRT build failed, the user pressed Ctrl-C) is
a `RuntimeFailure` and exits with `EXIT_RUNTIME_ERROR`; anything else is our bug (`EXIT_INTERNAL_ERROR`).
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_CHECK_FAILED = 1  # a measurement or comparison ran and failed its tolerance
EXIT_USER_ERROR = 2  # bad input: nothing was written
EXIT_INTERNAL_ERROR = 3  # a bug in trgen
EXIT_RUNTIME_ERROR = 4  # run-time failure not caused by the input: server died, build failed, interrupted


class GeneratorError(Exception):
    """A user-facing error: one line, names where the problem is and how to fix it."""

    def __init__(self, message: str, *, where: str | Path | None = None) -> None:
        self.message = " ".join(message.split())  # always one line
        self.where = str(where) if where is not None else None
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class SpecError(GeneratorError):
    """A problem in the YAML spec, located as file:line and the dotted field path."""

    def __init__(self, message: str, *, file: str | Path, line: int | None = None, field: str | None = None) -> None:
        where = f"{file}:{line}" if line is not None else str(file)
        text = f"{field}: {message}" if field else message
        super().__init__(text, where=where)
        self.file = str(file)
        self.line = line
        self.field = field


class RuntimeFailure(GeneratorError):
    """A run-time failure that is not the user's input (server died, build failed, interrupted).

    Still one line for the user, but the CLI exits with `EXIT_RUNTIME_ERROR` rather than
    `EXIT_USER_ERROR`: re-running the same input may succeed.
    """


class ProblemList(GeneratorError):
    """Several user-facing problems found at once (a spec with three mistakes): the CLI prints each.

    Its own message is the first problem plus a count, for callers that only show one line.
    """

    def __init__(self, problems: list[GeneratorError]) -> None:
        self.problems = tuple({str(p): p for p in problems}.values())  # the same problem once
        first = self.problems[0]
        more = len(self.problems) - 1
        super().__init__(first.message + (f" (and {more} more, printed one per line)" if more else ""), where=first.where)

    def lines(self) -> list[str]:
        """Every problem as one line."""
        return [str(p) for p in self.problems]


def problem_lines(exc: GeneratorError) -> list[str]:
    """The one-line messages of an error: one, or one per problem of a `ProblemList`."""
    return exc.lines() if isinstance(exc, ProblemList) else [str(exc)]
