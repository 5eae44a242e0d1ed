"""What a port action can fail with; `status` is the HTTP status the API answers with."""

from __future__ import annotations


class ActionError(Exception):
    """An action could not be carried out; `status` is the HTTP status the API answers with."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StaleTarget(ActionError):
    """That pid with that create_time no longer holds the port: the page was out of date."""

    status = 409


class Refused(ActionError):
    """A protected process, or the kernel said we may not signal it."""

    status = 403


class NoFreePort(ActionError):
    status = 409
