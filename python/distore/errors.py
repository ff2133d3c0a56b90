"""Exceptions that mirror distore's sentinel errors (package backend)."""


class DistoreError(Exception):
    """Any error from distore. code is the wire's error code ("not_found", ...)."""

    code = "internal"

    def __init__(self, message, code=None, op=None, object_id=None):
        super().__init__(message)
        if code is not None:
            self.code = code
        self.op = op
        self.object_id = object_id


class NotFound(DistoreError, KeyError):
    code = "not_found"

    def __str__(self):  # KeyError would quote the message
        return Exception.__str__(self)


class Exists(DistoreError):
    code = "exists"


class Full(DistoreError):
    """No room now. requested, free, capacity and pinned are in bytes."""

    code = "full"

    def __init__(self, message, code=None, op=None, object_id=None, requested=0, free=0, capacity=0, pinned=0):
        super().__init__(message, code, op, object_id)
        self.requested, self.free, self.capacity, self.pinned = requested, free, capacity, pinned


class TooLarge(Full):
    code = "too_large"


class Pinned(DistoreError):
    code = "pinned"


class NotPinned(DistoreError):
    code = "not_pinned"


class InvalidID(DistoreError, ValueError):
    code = "invalid_id"


class InvalidArgument(DistoreError, ValueError):
    code = "invalid_argument"


class UnknownColumn(InvalidArgument):
    """A columnar read names a column the table lacks (HTTP 400); the
    message names the table's columns."""

    code = "unknown_column"


class BadRange(InvalidArgument):
    """A range outside the object, or a columnar read's rows outside the
    table (HTTP 416)."""

    code = "bad_range"


class NotArrow(InvalidArgument):
    """A columnar read of an object that is not an Arrow IPC file (HTTP 415)."""

    code = "not_arrow"


class Corrupt(DistoreError):
    code = "corrupt"


class Unavailable(DistoreError):
    code = "unavailable"


class Unsupported(Unavailable):
    """The server does not offer this call (e.g. prefetch groups on a server
    without the cluster's groups)."""

    code = "unsupported"


class Closed(DistoreError):
    code = "closed"


class Timeout(DistoreError, TimeoutError):
    code = "timeout"


class ProtocolError(DistoreError):
    code = "protocol"


_BY_CODE = {c.code: c for c in (NotFound, Exists, Full, TooLarge, Pinned, NotPinned, InvalidID,
                                 InvalidArgument, UnknownColumn, BadRange, NotArrow, Corrupt, Unavailable,
                                 Unsupported, Closed, Timeout, ProtocolError)}
_BY_CODE.update({"bad_body": InvalidArgument, "length_required": InvalidArgument,
                 "canceled": DistoreError})


def from_code(code, message, op=None, object_id=None, requested=0, free=0, capacity=0, pinned=0):
    """Return the exception for an error code of the server."""
    cls = _BY_CODE.get(code, DistoreError)
    if issubclass(cls, Full):
        return cls(message, code, op, object_id, requested, free, capacity, pinned)
    return cls(message, code, op, object_id)
