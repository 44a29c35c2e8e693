"""`make check` leaves out the tests conftest.HEAVY names; a renamed test would silently come back into it."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import HEAVY, NEEDS_BY_FILE

TESTS = Path(__file__).parent


def test_every_test_marked_by_name_or_file_exists():
    missing = [f"{file}::{name}" for file, names in HEAVY.items() for name in sorted(names)
               if f"def {name}(" not in (TESTS / file).read_text()]
    assert missing == []
    assert [file for file in NEEDS_BY_FILE if not (TESTS / file).exists()] == []
