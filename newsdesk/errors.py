"""The one type of failure a user is shown: every layer's own errors derive from it.

Commands (`newsdesk.clikit.reported`) and the chat catch `NewsdeskError` alone, so a
new error class is reported everywhere the moment it subclasses this, and no list of
expected failures has to be kept in step across the command-line modules. It lives
beside the settings, a leaf every layer (index included) may import.
"""

from __future__ import annotations


class NewsdeskError(Exception):
    """A failure the user can act on: its message is shown as is, without a traceback,
    and a command exits with `exit_code`."""

    exit_code: int = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self)
