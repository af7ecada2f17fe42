"""Exceptions of the hfreduce binding, one per hfrResult_t code."""

import builtins

# hfrResult_t
SUCCESS = 0
SYSTEM_ERROR = 2
INTERNAL_ERROR = 3
INVALID_ARGUMENT = 4
INVALID_USAGE = 5
REMOTE_ERROR = 6
IN_PROGRESS = 7
TIMEOUT = 8
ABORTED = 9

RESULT_NAMES = {
    SUCCESS: "hfrSuccess",
    SYSTEM_ERROR: "hfrSystemError",
    INTERNAL_ERROR: "hfrInternalError",
    INVALID_ARGUMENT: "hfrInvalidArgument",
    INVALID_USAGE: "hfrInvalidUsage",
    REMOTE_ERROR: "hfrRemoteError",
    IN_PROGRESS: "hfrInProgress",
    TIMEOUT: "hfrTimeout",
    ABORTED: "hfrAborted",
}


class Error(Exception):
    """Base class of every error raised by hfreduce.

    ``code`` is the hfrResult_t value (None for errors that did not come from a result code,
    e.g. the library not being found), ``message`` the library's sentence from
    hfrGetLastError (or the binding's own check), ``description`` hfrGetErrorString(code).
    """

    code = None

    def __init__(self, message, code=None, description=None):
        if code is not None:
            self.code = code
        self.message = message
        self.description = description
        super().__init__(message)

    def __str__(self):
        parts = []
        if self.code is not None:
            name = RESULT_NAMES.get(self.code, "result %d" % self.code)
            parts.append("%s (%d%s)" % (name, self.code,
                                        ", " + self.description if self.description else ""))
        if self.message:
            parts.append(self.message)
        return ": ".join(parts) if parts else self.__class__.__name__


class LibraryNotFoundError(Error, ImportError):
    """libhfreduce.so could not be found or loaded."""


class HFRSystemError(Error):
    code = SYSTEM_ERROR


class InternalError(Error):
    code = INTERNAL_ERROR


class InvalidArgumentError(Error, ValueError):
    code = INVALID_ARGUMENT


class InvalidUsageError(Error):
    code = INVALID_USAGE


class RemoteError(Error):
    code = REMOTE_ERROR


class HFRTimeoutError(Error, builtins.TimeoutError):
    code = TIMEOUT

    # OSError's constructor would reinterpret (message, code) as (errno, strerror).
    def __init__(self, message, code=None, description=None):
        Error.__init__(self, message, code, description)
        self.args = (message,)

    def __str__(self):
        return Error.__str__(self)


class AbortedError(Error):
    code = ABORTED


_BY_CODE = {
    SYSTEM_ERROR: HFRSystemError,
    INTERNAL_ERROR: InternalError,
    INVALID_ARGUMENT: InvalidArgumentError,
    INVALID_USAGE: InvalidUsageError,
    REMOTE_ERROR: RemoteError,
    TIMEOUT: HFRTimeoutError,
    ABORTED: AbortedError,
}


def error_class(code):
    return _BY_CODE.get(code, Error)
