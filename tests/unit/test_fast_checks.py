"""The column types' `fast_check` shortcuts never accept a value their full `check` refuses.

Compiled validators (`uow/validation.py`) trust the shortcut and skip the full check, so a
shortcut that is too generous would let a bad value reach the database.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mapper import types as t

TYPES = [t.Integer(), t.BigInteger(), t.SmallInteger(), t.Text(), t.String(5), t.Boolean()]

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**63) - 2, max_value=2**63 + 2),
    st.floats(allow_nan=True),
    st.text(),
    st.text(alphabet=st.characters(codec="ascii"), max_size=8),
    st.binary(max_size=8),
    st.sampled_from(["\x00", "ab\x00", "\ud800", "héllo", "12345", "123456", 2**31, -(2**31) - 1]),
)


@pytest.mark.parametrize("column_type", TYPES, ids=lambda ct: type(ct).__name__)
@given(value=values)
def test_a_shortcut_accepts_only_what_the_check_accepts(column_type: Any, value: Any) -> None:
    fast = column_type.fast_check("v")
    assert fast is not None
    if eval(fast, {}, {"v": value}):
        assert column_type.check(value) is None


@pytest.mark.parametrize(
    ("column_type", "value"),
    [(t.Integer(), 7), (t.Text(), "plain"), (t.String(5), "12345"), (t.Boolean(), False)],
)
def test_a_shortcut_clears_common_good_values(column_type: Any, value: Any) -> None:
    assert eval(column_type.fast_check("v"), {}, {"v": value})
