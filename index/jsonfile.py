"""Reading JSON and JSON Lines text, with errors that say where the text breaks.

The article loader and every question-set reader (eval.dataset, eval.selqa) parse
through here, so a broken file reads the same everywhere: "invalid JSON (line 3,
column 7: Expecting value)". Each caller puts its own file name in front.
"""

from __future__ import annotations

import json
from collections.abc import Iterator


class JsonError(ValueError):
    """Text that does not parse. `str()` names the line and column; `in_line` is for a
    message whose location already names the line (a JSONL record at "file:12")."""

    def __init__(self, message: str, in_line: str) -> None:
        super().__init__(message)
        self.in_line = in_line


def parse_json(text: str, line: int = 1) -> object:
    """`text` as JSON; `line` is the file line `text` starts on (for one JSONL line).

    Deep nesting is refused rather than let through as a RecursionError.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        number = line + exc.lineno - 1
        raise JsonError(
            f"invalid JSON (line {number}, column {exc.colno}: {exc.msg})",
            f"invalid JSON ({exc.msg} at column {exc.colno})",
        ) from exc
    except RecursionError as exc:
        raise JsonError("JSON nested too deeply", "JSON nested too deeply") from exc


def jsonl_lines(text: str) -> Iterator[tuple[int, str]]:
    """The non-blank lines of JSON Lines text with their 1-based line numbers."""
    # split("\n"), not splitlines(): JSON strings may hold U+2028, which splitlines breaks on.
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            yield number, line


def json_kind(value: object) -> str:
    """How a JSON value reads in an error message: "got an array", "got the number 3"."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string" if value.strip() else "a blank string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"
