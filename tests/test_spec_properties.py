"""Whatever text a spec holds, the loader answers with a SweepSpec or a SpecError: never another exception,
which the CLI would print as a traceback."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SMALL_SPEC
from trtbench.errors import SpecError
from trtbench.spec import SweepSpec, load_spec, parse_spec

FAST = settings(max_examples=150, deadline=None)


def _loads_or_refuses(text: str) -> None:
    try:
        spec = parse_spec(text, "spec.yaml")
    except SpecError as exc:
        assert str(exc).startswith("spec.yaml") and "\n" not in str(exc), str(exc)
    else:
        assert isinstance(spec, SweepSpec)


@FAST
@given(st.text())
def test_any_text(text):
    _loads_or_refuses(text)


# Values a typo or a hostile edit puts in a spec: out-of-range numbers, YAML 1.1 oddities, tags, aliases.
TOKENS = ["0", "-1", "1e12", "1000000000000", "9223372036854775808", "9" * 5000, ".inf", ".nan", "~", "[]", "{}",
          "&a [1, 2]", "*a", "!!int x", "!!binary x", "!!set {a}", "2024-13-45", "1:30", "0x1F", "yes", "<<: {}",
          "? [1]", "\t", "[[[[", "'", '"\\x"', "fp16", "sim", "h100-sxm", "budget_tokens: 1", "tp: [1, 2]"]


@st.composite
def mutated_spec(draw: st.DrawFn) -> str:
    """The example spec with a few short stretches replaced, by random text or a token above."""
    text = SMALL_SPEC
    for _ in range(draw(st.integers(1, 3))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 12)))
        text = text[:start] + draw(st.sampled_from(TOKENS) | st.text(max_size=8)) + text[end:]
    return text


@FAST
@given(mutated_spec())
def test_mutated_example_spec(text):
    _loads_or_refuses(text)


BASE = yaml.safe_load(SMALL_SPEC)
KEYS = st.sampled_from(["name", "model", "config", "grid", "isl", "osl", "tp", "pp", "precision", "requests",
                        "default", "fixed", "budget_tokens", "min", "max", "table", "requests", "runtime",
                        "max_batch_size", "timeout_s", "trtllm", "build", "gpu", "backend"]) | st.text(max_size=6)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
    | st.sampled_from(["fp8", "auto", "sim", "h100-sxm", "Llama-3.1-8B"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=16,
)


def _with(data: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    """`data` with the value at `path` replaced (the mappings on the way created where missing)."""
    head, *rest = path
    inner = data.get(head)
    return {**data, head: _with(inner if isinstance(inner, dict) else {}, rest, value) if rest else value}


@FAST
@given(st.lists(st.tuples(st.lists(KEYS, min_size=1, max_size=3), VALUES), max_size=3))
def test_example_spec_with_random_values(edits):
    data = BASE
    for path, value in edits:
        data = _with(data, path, value)
    _loads_or_refuses(yaml.safe_dump(data))


@FAST
@given(VALUES)
def test_random_yaml_document(value):
    _loads_or_refuses(yaml.safe_dump(value))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary())
def test_any_bytes_in_a_file(tmp_path, data):
    path = tmp_path / "spec.yaml"
    path.write_bytes(data)
    try:
        load_spec(path)
    except SpecError as exc:
        assert "\n" not in str(exc), str(exc)
