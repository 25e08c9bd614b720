"""The public API: what stagegate/__init__.py exports, and that it is documented."""

from __future__ import annotations

import re
from pathlib import Path

import stagegate

ROOT = Path(__file__).resolve().parents[1]


class TestPublicFace:
    def test_all_is_sorted_and_matches_the_module(self) -> None:
        assert sorted(stagegate.__all__) == list(stagegate.__all__)
        for name in stagegate.__all__:
            assert hasattr(stagegate, name), name

    def test_every_exported_name_appears_in_the_reference(self) -> None:
        reference = (ROOT / "docs" / "reference.md").read_text("utf-8")
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", reference))
        missing = [name for name in stagegate.__all__ if name not in words]
        assert missing == []

    def test_every_error_derives_from_the_one_base(self) -> None:
        errors = [
            getattr(stagegate, name)
            for name in stagegate.__all__
            if name.endswith("Error") and name != "StagegateError"
        ]
        assert errors
        for error in errors:
            assert issubclass(error, stagegate.StagegateError), error
