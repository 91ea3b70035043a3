"""Errors that are the user's to fix (a file, a folder, a config, an option value), told apart from bugs.

Every command line reports a UserError as one `error: ...` line on standard error and exit status 2, and lets
anything else (a bug) end with its traceback. The project's error types derive from UserError and from the
built-in type they were raised as before (ValueError, FileNotFoundError, RuntimeError), so that code catching
those still catches them. This module imports nothing heavy: a command line's --help must not wait for torch.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

USER_ERROR_STATUS = 2  # what argparse exits with for a bad option: the command was given something wrong
ERROR_PREFIX = "error: "


class UserError(Exception):
    """Something the user gave is wrong, and the message says what and, where it can, how to fix it."""


def is_about(filename: str | Path, path: str | Path) -> bool:
    """Whether `filename` is `path`, a folder above it or a file under it."""
    named, other = Path(path).absolute(), Path(filename).absolute()
    return other == named or named in other.parents or other in named.parents


@contextmanager
def user_path(path: str | Path) -> Iterator[None]:
    """An OSError on a file or folder the user named (cannot read it, cannot write there, or a folder above it)
    as a UserError. Any other OSError, such as one on a file of ours, is a bug and goes on up."""
    try:
        yield
    except OSError as err:
        # no file name: one of ours that says what is wrong already (DataNotFound), or a bug
        if err.filename is None or not is_about(err.filename, path):
            raise
        raise UserError(f"{err.filename}: {err.strerror or err}") from err


def error_line(err: UserError) -> str:
    """The message as one line: some quote a multi-line one (a transformers loading error, a hint below)."""
    return ERROR_PREFIX + " ".join(line.strip() for line in str(err).splitlines() if line.strip())


def reports_user_errors(main: Callable[[list[str] | None], int]) -> Callable[[list[str] | None], int]:
    """A command line's main that prints a UserError as one line on standard error and returns
    USER_ERROR_STATUS; every other exception goes on up with its traceback."""

    @functools.wraps(main)
    def reporting(argv: list[str] | None = None) -> int:
        try:
            return main(argv)
        except UserError as err:
            print(error_line(err), file=sys.stderr)
            return USER_ERROR_STATUS

    return reporting
