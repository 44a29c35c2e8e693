"""Text copied out of a benchmark's log or report into a record, a message or report.md: one printable line.

Logs carry colour codes, progress-bar carriage returns and, after a crash, any bytes at all; a report
JSON can hold any string. Copied as they are they garble a terminal or the report's markdown table.
"""

from __future__ import annotations

import re

# ECMA-48 escape sequences: CSI (ESC [ or the 8-bit \x9b) with parameters, OSC (ESC ] or \x9d) up to its
# terminator, and two-or-more-byte ESC sequences (charset selection, keypad modes).
_ESCAPE = re.compile(r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"
                     r"|\x1b[ -/]*[0-~]")
_SPACE = re.compile(r"[\t\n\v\f\r\x85\u2028\u2029]")  # line breaks and tabs: a space, so words stay apart
# What is left of C0, DEL and C1, and the bidirectional overrides that reorder what a reader sees.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # a lone one (JSON's "\ud800") cannot be written as UTF-8


def printable(text: str, limit: int = 500) -> str:
    """`text` as one line without control characters, stripped, at most `limit` characters: a longer one
    is cut and ends with "…", so a reader knows there was more."""
    if not text.isprintable():
        text = _CONTROL.sub("", _SPACE.sub(" ", _ESCAPE.sub("", text)))
        text = _SURROGATE.sub("\ufffd", text)
    text = text.strip()
    return text if len(text) <= limit else text[:limit - 1] + "…"
