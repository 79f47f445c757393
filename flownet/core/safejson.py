"""Parsing JSON from untrusted sources (API bodies, blobs, provider metadata) without crashing the process.

Python's JSON decoder recurses once per nesting level and only stops at the interpreter's recursion
limit. Some dependencies raise that limit (py_ecc, imported through eth-keyfile, sets it to 100,000), and
then 70,000 ``[`` overflow the C stack and kill the whole process instead of raising. So every parser of
outside input here:

1. refuses more than `max_bytes` before looking at the bytes;
2. measures the nesting depth with one linear scan (strings and escapes respected) and refuses more
   than `max_depth` levels before the decoder sees the document;
3. only then calls `json.loads`.

`clamp_recursion_limit` puts a sane recursion limit back for code that must parse large trusted-but-remote
documents (JSON-RPC answers) without the scan: the decoder then raises RecursionError instead of crashing.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from flownet.errors import FlowNetError

__all__ = ["MAX_DEPTH", "SANE_RECURSION_LIMIT", "InputRejected", "clamp_recursion_limit", "depth_of", "loads"]

#: Deepest nesting any FlowNet document needs is 4; 32 leaves room and stays far from any stack limit.
MAX_DEPTH = 32
#: Python's default is 1,000; a few thousand covers every legitimate recursion FlowNet does.
SANE_RECURSION_LIMIT = 4_000

_TOKENS = re.compile(rb'[\[\]{}"\\]')


class InputRejected(FlowNetError, ValueError):
    """Input from outside (a request body, a blob, a document) is too large or too deeply nested;
    `reason` is "size" or "depth"."""

    exit_code = 14

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def depth_of(data: bytes) -> int:
    """The deepest nesting of arrays and objects in `data` (JSON text), brackets inside strings ignored.
    Linear in the number of brackets, quotes and backslashes (one C-level regex scan)."""
    depth = deepest = 0
    in_string = False
    escaped_at = -1  # the position a backslash inside a string escapes
    for match in _TOKENS.finditer(data):
        position = match.start()
        token = data[position]
        if in_string:
            if position == escaped_at:
                continue
            if token == 0x5C:  # backslash
                escaped_at = position + 1
            elif token == 0x22:  # quote
                in_string = False
            continue
        if token == 0x22:
            in_string = True
        elif token in (0x5B, 0x7B):
            depth += 1
            if depth > deepest:
                deepest = depth
        elif token in (0x5D, 0x7D):
            depth -= 1
    return deepest


def loads(data: bytes | str, *, what: str, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads(data)` after refusing more than `max_bytes` or `max_depth` levels of nesting
    (InputRejected, naming `what`); invalid JSON raises ValueError as json.loads does."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    if len(raw) > max_bytes:
        raise InputRejected(f"{what} is {len(raw):,} bytes, more than the {max_bytes:,} accepted", "size")
    depth = depth_of(raw)
    if depth > max_depth:
        raise InputRejected(f"{what} nests {depth} levels deep, more than the {max_depth} accepted", "depth")
    clamp_recursion_limit()
    return json.loads(raw)


def clamp_recursion_limit(limit: int = SANE_RECURSION_LIMIT) -> None:
    """Lower the interpreter's recursion limit to `limit` if an import raised it above (py_ecc does)."""
    if sys.getrecursionlimit() > limit:
        sys.setrecursionlimit(limit)
