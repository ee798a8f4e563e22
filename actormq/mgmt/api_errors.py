"""The EMQX 4 return codes of the management API and `ApiError`, the error
answer handlers raise: without aiohttp, so the node imports it only when the
API is first asked (see `plane`)."""

from __future__ import annotations

# EMQX 4 return codes (emqx_management).
OK = 0
RPC_ERROR = 101
UNKNOWN_ERROR = 102
WRONG_CREDENTIALS = 103
EMPTY_CREDENTIALS = 104
MISSING_PARAMETER = 107
BAD_PARAMETER = 108
BAD_JSON = 109
PLUGIN_LOADED = 110
PLUGIN_NOT_LOADED = 111
CLIENT_OFFLINE = 112
BAD_TOPIC = 115
NOT_FOUND = 404     # EMQX 4 answers an unknown object with HTTP 404 and this code


class ApiError(Exception):
    """An error answer: HTTP status, EMQX return code and a one-line message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def bad_parameter(message: str) -> ApiError:
    return ApiError(400, BAD_PARAMETER, message)


def missing_parameter(name: str) -> ApiError:
    return ApiError(400, MISSING_PARAMETER, f"missing parameter: {name}")


def not_found(message: str) -> ApiError:
    return ApiError(404, NOT_FOUND, message)
