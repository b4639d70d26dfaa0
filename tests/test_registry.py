import pytest

from idbench.errors import IdbenchError
from idbench.registry import Registry, Spec, format_spec, parse_spec


def test_parse_spec_types_values():
    name, options = parse_spec("fc[depth=2, width=200,act=relu,lr=1e-3,bn=true,x=none]")
    assert name == "fc"
    assert options == {"depth": 2, "width": 200, "act": "relu", "lr": 1e-3, "bn": True, "x": None}
    assert parse_spec("timm:resnet18") == ("timm:resnet18", {})


def test_format_spec_roundtrips_sorted():
    assert format_spec("fc", {"width": 200, "depth": 2}) == "fc[depth=2,width=200]"
    assert parse_spec(format_spec("fc", {"width": 200, "depth": 2})) == ("fc", {"depth": 2, "width": 200})


@pytest.mark.parametrize("bad", ["fc[depth]", "fc[=2]", "fc[depth=2", ""])
def test_malformed_specs(bad):
    with pytest.raises(IdbenchError, match="cannot parse"):
        parse_spec(bad)


@pytest.fixture
def registry():
    reg = Registry("widget")

    @reg.register("round")
    def round_(*, size: int, color: str = "red"):
        return ("round", size, color)

    @reg.register("fam:")
    def family(*, name: str, size: int):
        return ("fam", name, size)

    return reg


def test_create_list_and_prefix_families(registry):
    assert registry.create("round[color=blue]", size=3) == ("round", 3, "blue")
    assert registry.create("fam:x", size=1) == ("fam", "x", 1)
    assert registry.list() == ["fam:", "round"]
    assert registry.list("r*") == ["round"]
    assert "round[color=1]" in registry and "square" not in registry


def test_did_you_mean_and_unknown_options(registry):
    with pytest.raises(IdbenchError, match="Did you mean 'round'"):
        registry.create("rund", size=1)
    with pytest.raises(IdbenchError, match="does not take option.*'colour'.*color"):
        registry.create("round[colour=blue]", size=1)
    with pytest.raises(IdbenchError, match="does not take option.*'size'"):
        registry.create("round[size=2]", size=1)


def test_double_registration_is_a_bug(registry):
    with pytest.raises(ValueError):
        registry.register("round")(lambda: None)


def test_options_may_hold_tuples_lists_quoted_commas_and_nested_brackets():
    name, options = parse_spec("x[a=(1,2),b=[3,[4,5]],c='p,q',d=true,e=relu,f=1e-3]")
    assert name == "x"
    assert options == {"a": (1, 2), "b": [3, [4, 5]], "c": "p,q", "d": True, "e": "relu",
                       "f": 1e-3}
    assert Spec.parse(str(Spec.parse("x[b=[3,4],a=(1,2)]"))) == Spec("x", {"a": (1, 2), "b": [3, 4]})
    for bad in ("x[a=(1,2]", "x[a=[1,2)]", "x[a='open]"):
        with pytest.raises(IdbenchError, match="cannot parse"):
            parse_spec(bad)


def test_the_registry_checks_options_in_one_place_with_its_declared_context():
    reg = Registry("thing", context=("size",))

    @reg.register("box")
    def box(*, size: int, colour: str = "red") -> tuple:
        return size, colour

    assert reg.check("box[colour=blue]")[2] == {"colour": "blue"}
    for bad in ("box[size=3]", "box[weight=2]"):  # a context parameter, an unknown option
        with pytest.raises(IdbenchError, match=r"does not take option.*its options are: colour"):
            reg.check(bad)
    assert reg.create("box[colour=blue]", size=2) == (2, "blue")


def test_option_values_are_checked_against_the_factory_signature():
    reg = Registry("thing")

    @reg.register("box")
    def box(*, size: int = 1, scale: float | None = None, flat: bool = False) -> tuple:
        """A box.

        More about boxes."""
        return size, scale, flat

    assert reg.check("box[size=2,scale=3,flat=true]")[2] == {"size": 2, "scale": 3, "flat": True}
    for bad, phrase in (("size=abc", "option size='abc' is not of its type int"),
                        ("size=2.5", "option size=2.5 is not of its type int"),
                        ("flat=abc", "option flat='abc' is not of its type bool"),
                        ("scale=1e999", "option scale=inf is not a finite number")):
        with pytest.raises(IdbenchError, match=phrase.replace("(", r"\(")):
            reg.check(f"box[{bad}]")
    entry = reg.describe("box")
    assert entry.summary == "A box."
    assert [(o.name, o.type, o.default) for o in entry.options] == [
        ("size", "int", "1"), ("scale", "float | None", "none"), ("flat", "bool", "false")]


def test_a_class_without_its_own_docstring_is_described_by_its_module():
    import idbench.projections

    entry = idbench.projections.PROJECTIONS.describe("sparse")
    assert entry.summary.startswith("Very sparse random projection")  # sparse.py's first line
    assert [o.name for o in entry.options] == ["density"]
