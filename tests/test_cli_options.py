"""``stagegate.cli._options``: the options every command reads the same way."""

from __future__ import annotations

import click
import pytest

from stagegate.cli._options import names, pairs


class TestPairs:
    def test_repeated_flags_make_a_mapping_the_last_one_of_a_name_winning(self) -> None:
        assert pairs(("a=1", "b=2", "a=3"), "--map") == {"a": "3", "b": "2"}

    def test_only_the_first_equals_sign_splits(self) -> None:
        assert pairs(("expr=a=b",), "--map") == {"expr": "a=b"}

    def test_column_headers_keep_their_spaces_other_names_lose_them(self) -> None:
        assert pairs((" Stage Name =x",), "--column") == {" Stage Name ": "x"}
        assert pairs((" Stage Name =x",), "--map", strip=True) == {"Stage Name": "x"}

    @pytest.mark.parametrize("value", ["nothing", "=x", "x=", " = ", ""])
    def test_a_value_without_both_sides_is_refused_naming_the_flag_and_shape(
        self, value: str
    ) -> None:
        with pytest.raises(click.BadParameter) as raised:
            pairs(("a=1", value), "--map", shape="OLD=NEW", strip=True)
        assert "OLD=NEW" in raised.value.format_message()
        assert repr(value) in raised.value.format_message()
        assert raised.value.param_hint == "--map"


def test_names_split_on_commas_and_drop_blanks() -> None:
    assert names(("Lead, Qualify", "", " Won ,")) == ["Lead", "Qualify", "Won"]
