"""Errors that reach a user: each says what is wrong and where, so no traceback is needed."""

from __future__ import annotations


class SmsdropError(Exception):
    """Base of every error the CLI turns into a one-line message and a non-zero exit."""


class InputError(SmsdropError):
    """Bad user input, located as precisely as known: file, line (from 1) and field."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file, self.line, self.field, self.reason = file, line, field, message
        where = ":".join(str(p) for p in (file, line) if p is not None)
        if field:
            where = f"{where} field {field}" if where else f"field {field}"
        super().__init__(f"{where}: {message}" if where else message)


class InvalidName(InputError):
    """A file name that does not follow the provider's naming pattern."""


def printable(text: object, limit: int = 80) -> str:
    """Text from a file or an argument, safe to print: control characters escaped, cut short.

    A column name or an argument can hold terminal escape sequences; a message must not.
    """
    value = str(text)
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in value)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"
