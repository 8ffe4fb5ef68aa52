"""Unit tests of `mapper.criteria`: nodes built by column operators, combining, shapes, order."""

import re
from typing import Any

import attrs
import pytest

from mapper import Column, EntityMap
from mapper import types as t
from mapper.criteria import (
    And,
    Between,
    ColumnReference,
    Comparison,
    Criterion,
    InList,
    IsNull,
    Like,
    Not,
    Or,
    Ordering,
    as_ordering,
)


@attrs.define
class User:
    name: str
    age: int
    email: str | None = None
    id: int | None = None


class UserMap(EntityMap[User]):
    __table__ = "users"
    id = Column(t.Integer(), primary_key=True)
    name = Column(t.String(100))
    age = Column(t.Integer())
    email = Column(t.String(200))


NAME = UserMap.name
AGE = UserMap.age
EMAIL = UserMap.email


class TestOperators:
    @pytest.mark.parametrize(
        ("build", "operator"),
        [
            (lambda: AGE == 30, "="),
            (lambda: AGE != 30, "<>"),
            (lambda: AGE < 30, "<"),
            (lambda: AGE <= 30, "<="),
            (lambda: AGE > 30, ">"),
            (lambda: AGE >= 30, ">="),
        ],
        ids=["eq", "ne", "lt", "le", "gt", "ge"],
    )
    def test_comparisons_build_comparison_nodes(self, build: Any, operator: str) -> None:
        """Each comparison operator builds a Comparison with its SQL operator and value."""
        node = build()
        assert isinstance(node, Comparison)
        assert node.column is AGE
        assert node.operator == operator
        assert node.value == 30

    def test_a_reflected_comparison_keeps_the_column_on_the_left(self) -> None:
        """`30 < AGE` builds `AGE > 30`."""
        node = 30 < AGE  # noqa: SIM300 - the reflected operator is the point
        assert isinstance(node, Comparison)
        assert node.column is AGE
        assert node.operator == ">"

    def test_equal_to_none_is_is_null(self) -> None:
        """`column == None` builds IS NULL, never `= NULL`."""
        node = EMAIL == None  # noqa: E711
        assert isinstance(node, IsNull)
        assert node.column is EMAIL
        assert node.negated is False

    def test_not_equal_to_none_is_is_not_null(self) -> None:
        """`column != None` builds IS NOT NULL."""
        node = EMAIL != None  # noqa: E711
        assert isinstance(node, IsNull)
        assert node.negated is True

    def test_is_null_and_is_not_null_methods(self) -> None:
        """is_null() and is_not_null() build the same nodes as == None and != None."""
        assert EMAIL.is_null().shape(False) == (EMAIL == None).shape(False)  # noqa: E711
        assert EMAIL.is_not_null().shape(False) == (EMAIL != None).shape(False)  # noqa: E711

    def test_a_column_compared_with_a_column(self) -> None:
        """Comparing two columns keeps the second column as the value."""
        node = NAME == EMAIL
        assert isinstance(node, Comparison)
        assert node.value is EMAIL
        assert list(node.columns()) == [NAME, EMAIL]

    def test_in_builds_an_in_list_of_a_tuple(self) -> None:
        """in_ copies any iterable into a tuple."""
        node = AGE.in_(v for v in (1, 2, 3))
        assert isinstance(node, InList)
        assert node.values == (1, 2, 3)
        assert node.negated is False

    def test_not_in_is_a_negated_in_list(self) -> None:
        """not_in builds a negated InList."""
        node = AGE.not_in([1])
        assert isinstance(node, InList)
        assert node.negated is True

    @pytest.mark.parametrize("value", ["abc", b"abc"], ids=repr)
    def test_in_refuses_a_bare_string(self, value: Any) -> None:
        """in_("abc") is refused rather than read as ("a", "b", "c")."""
        with pytest.raises(TypeError, match="single value"):
            NAME.in_(value)
        with pytest.raises(TypeError, match="single value"):
            NAME.not_in(value)

    def test_like_and_ilike(self) -> None:
        """like is case-sensitive, ilike is not."""
        like = NAME.like("A%")
        ilike = NAME.ilike("a%")
        assert isinstance(like, Like)
        assert isinstance(ilike, Like)
        assert (like.pattern, like.case_insensitive) == ("A%", False)
        assert (ilike.pattern, ilike.case_insensitive) == ("a%", True)

    def test_between_keeps_both_ends(self) -> None:
        """between builds a Between with low and high."""
        node = AGE.between(18, 65)
        assert isinstance(node, Between)
        assert (node.low, node.high) == (18, 65)

    def test_columns_stay_hashable(self) -> None:
        """Overloading == does not make columns unhashable: they can key dicts."""
        seen = {NAME: 1, AGE: 2}
        assert seen[NAME] == 1
        assert hash(NAME) != hash(AGE)

    def test_columns_satisfy_the_column_reference_protocol(self) -> None:
        """A mapped Column is a ColumnReference: an owner and an attribute."""
        assert isinstance(NAME, ColumnReference)
        assert (NAME.owner, NAME.attribute) == (UserMap, "name")


class TestCombining:
    def test_and_builds_an_and_node(self) -> None:
        """`a & b` holds both parts in order."""
        a, b = AGE > 1, NAME == "x"
        node = a & b
        assert isinstance(node, And)
        assert node.parts == (a, b)

    def test_or_builds_an_or_node(self) -> None:
        """`a | b` holds both parts in order."""
        a, b = AGE > 1, NAME == "x"
        node = a | b
        assert isinstance(node, Or)
        assert node.parts == (a, b)

    def test_nested_ands_flatten(self) -> None:
        """(a & b) & (c & d) is one And of four parts."""
        a, b, c, d = AGE > 1, AGE < 9, NAME == "x", EMAIL.is_null()
        node = (a & b) & (c & d)
        assert isinstance(node, And)
        assert node.parts == (a, b, c, d)

    def test_nested_ors_flatten(self) -> None:
        """a | (b | c) is one Or of three parts."""
        a, b, c = AGE > 1, AGE < 9, NAME == "x"
        node = a | (b | c)
        assert isinstance(node, Or)
        assert node.parts == (a, b, c)

    def test_and_inside_or_is_not_flattened(self) -> None:
        """(a & b) | c keeps the And as one part of the Or."""
        a, b, c = AGE > 1, AGE < 9, NAME == "x"
        node = (a & b) | c
        assert isinstance(node, Or)
        assert len(node.parts) == 2
        assert isinstance(node.parts[0], And)
        assert node.parts[1] is c

    def test_invert_builds_a_not(self) -> None:
        """~a wraps a in Not."""
        a = AGE > 1
        node = ~a
        assert isinstance(node, Not)
        assert node.part is a

    def test_invert_of_a_combination(self) -> None:
        """~(a | b) wraps the whole Or."""
        a, b = AGE > 1, AGE < 9
        node = ~(a | b)
        assert isinstance(node, Not)
        assert isinstance(node.part, Or)

    @pytest.mark.parametrize("other", [True, None, "age > 1", 1], ids=repr)
    def test_combining_with_a_non_criterion_is_refused(self, other: Any) -> None:
        """`criterion & True` or `| "sql"` is refused: criteria come from columns only."""
        with pytest.raises(TypeError):
            _ = (AGE > 1) & other
        with pytest.raises(TypeError):
            _ = (AGE > 1) | other

    def test_a_criterion_has_no_truth_value(self) -> None:
        """bool(criterion) raises TypeError telling to use & | ~."""
        with pytest.raises(TypeError, match=re.escape("& | ~")):
            bool(AGE > 1)

    def test_python_and_or_not_are_refused(self) -> None:
        """`a and b`, `a or b` and `not a` raise instead of silently dropping a part."""
        a, b = AGE > 1, AGE < 9
        with pytest.raises(TypeError):
            _ = a and b
        with pytest.raises(TypeError):
            _ = a or b
        with pytest.raises(TypeError):
            _ = not a

    def test_a_chained_comparison_is_refused(self) -> None:
        """`1 < AGE < 9` would drop a bound; it raises instead."""
        with pytest.raises(TypeError):
            _ = 1 < AGE < 9

    def test_columns_lists_every_column_read(self) -> None:
        """columns() walks the whole tree."""
        node = ~((AGE > 1) & NAME.like("a%")) | EMAIL.in_([1]) | AGE.between(1, 2)
        assert [c.attribute for c in node.columns()] == ["age", "name", "email", "age"]


class TestShape:
    def test_values_do_not_change_the_shape(self) -> None:
        """Two criteria differing only in values share a shape (and a cached statement)."""
        first = (AGE > 1) & NAME.like("a%") & AGE.between(1, 2) & ~(EMAIL == "x")
        second = (AGE > 99) & NAME.like("zz") & AGE.between(5, 6) & ~(EMAIL == "y")
        assert first.shape(False) == second.shape(False)
        assert first.shape(True) == second.shape(True)
        assert hash(first.shape(True)) == hash(second.shape(True))

    @pytest.mark.parametrize(
        ("first", "second"),
        [
            (lambda: AGE > 1, lambda: AGE >= 1),
            (lambda: AGE > 1, lambda: UserMap.id > 1),
            (lambda: (AGE > 1) & (AGE < 2), lambda: (AGE > 1) | (AGE < 2)),
            (lambda: (AGE > 1) & (AGE < 2), lambda: (AGE < 2) & (AGE > 1)),
            (lambda: AGE > 1, lambda: ~(AGE > 1)),
            (EMAIL.is_null, EMAIL.is_not_null),
            (lambda: NAME.like("a"), lambda: NAME.ilike("a")),
            (lambda: AGE.in_([1]), lambda: AGE.not_in([1])),
            (lambda: NAME == "a", lambda: NAME == EMAIL),
            (lambda: NAME == EMAIL, lambda: NAME == AGE),
            (
                lambda: (AGE > 1) & ((AGE > 2) | (AGE > 3)),
                lambda: ((AGE > 1) & (AGE > 2)) | (AGE > 3),
            ),
        ],
        ids=[
            "operator",
            "column",
            "and-vs-or",
            "part-order",
            "negation",
            "null-negation",
            "case",
            "in-negation",
            "value-vs-column",
            "other-column",
            "nesting",
        ],
    )
    def test_structure_changes_the_shape(self, first: Any, second: Any) -> None:
        """Operators, columns, connectives, negation and nesting are part of the shape."""
        assert first().shape(True) != second().shape(True)

    def test_in_list_length_counts_only_when_sized(self) -> None:
        """IN lists of different lengths share a shape unless the dialect needs the size."""
        short, long = AGE.in_([1]), AGE.in_([1, 2, 3])
        assert short.shape(False) == long.shape(False)
        assert short.shape(True) != long.shape(True)
        assert AGE.in_([7]).shape(True) == short.shape(True)

    def test_the_shape_distinguishes_mappings(self) -> None:
        """Same attribute name on two mappings gives two shapes."""

        @attrs.define
        class Pet:
            name: str
            id: int | None = None

        class PetMap(EntityMap[Pet]):
            __table__ = "pets"
            id = Column(t.Integer(), primary_key=True)
            name = Column(t.String(100))

        assert (PetMap.name == "a").shape(False) != (UserMap.name == "a").shape(False)

    def test_every_node_is_a_criterion(self) -> None:
        """All node classes derive from Criterion, so & | ~ work on any of them."""
        for node in [
            AGE > 1,
            AGE.in_([1]),
            NAME.like("a"),
            EMAIL.is_null(),
            AGE.between(1, 2),
            ~(AGE > 1),
            (AGE > 1) & (AGE < 2),
            (AGE > 1) | (AGE < 2),
        ]:
            assert isinstance(node, Criterion)


class TestOrdering:
    def test_a_column_is_ascending(self) -> None:
        """order_by=UserMap.name sorts ascending by name."""
        (ordering,) = as_ordering(NAME)
        assert ordering.column is NAME
        assert ordering.descending is False

    def test_desc_is_descending(self) -> None:
        """UserMap.name.desc() sorts descending; asc() ascending."""
        (descending,) = as_ordering(NAME.desc())
        assert descending.descending is True
        (ascending,) = as_ordering(NAME.asc())
        assert ascending.descending is False

    @pytest.mark.parametrize("container", [list, tuple])
    def test_a_sequence_keeps_its_order(self, container: Any) -> None:
        """A list or tuple of columns and orderings gives the keys in order."""
        orderings = as_ordering(container([AGE.desc(), NAME, EMAIL.asc()]))
        assert [(o.column, o.descending) for o in orderings] == [
            (AGE, True),
            (NAME, False),
            (EMAIL, False),
        ]

    def test_none_is_no_ordering(self) -> None:
        """order_by=None means no ORDER BY."""
        assert as_ordering(None) == ()

    @pytest.mark.parametrize(
        "keys", ["name", ["name"], "name DESC", [NAME, "age"], 1, AGE > 1], ids=repr
    )
    def test_strings_and_other_values_are_refused(self, keys: Any) -> None:
        """order_by takes mapped columns only, never SQL text (G10)."""
        with pytest.raises(TypeError, match="order_by takes mapping columns"):
            as_ordering(keys)

    def test_an_ordering_shape_has_column_and_direction(self) -> None:
        """An ordering's cache key is its column and direction."""
        assert NAME.desc().shape() == ((UserMap, "name"), True)
        assert NAME.asc().shape() != NAME.desc().shape()
        assert isinstance(NAME.asc(), Ordering)
