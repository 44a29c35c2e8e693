"""YAML in, a validated `SweepSpec` out, or one line naming the file, line and key; the YAML is composed once
and measured before any data is built, and input paths are anchored at the spec's directory."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, NoReturn

import yaml
from pydantic import (
    BaseModel,
    ValidationError,
)

from trtbench.errors import SpecError
from trtbench.files import read_input
from trtbench.spec.fields import MAX_DEPTH, MAX_NODES, MAX_SPEC_BYTES
from trtbench.spec.sweep import SweepSpec


def load_spec(path: str | Path) -> SweepSpec:
    path = Path(path)
    raw = read_input(path, MAX_SPEC_BYTES, "spec file", "a sweep spec is a few KiB of YAML")
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not a UTF-8 text file") from None
    return anchored(parse_spec(text, str(path)), path.resolve().parent)


# Inputs a spec names by path are found beside the spec, wherever trtbench runs; where a value may also be a
# name (a hub checkpoint, HF evaluate's metric), only when that file exists. Outputs (output_dir, workspace,
# engines_dir, reference_run) stay relative to where trtbench runs, as runs/ is.
_INPUT_PATHS = (("model", "path"), ("model", "config"), ("trtllm", "engine_dir"), ("build", "calibration", "path"))
_INPUT_PATHS_OR_NAMES = (("build", "checkpoint"), ("accuracy", "rouge_path"))


def anchored(spec: SweepSpec, base: Path) -> SweepSpec:
    """`spec` with its relative input paths made absolute against `base` (the spec file's directory)."""
    data = spec.canonical()

    def anchor(keys: tuple[str, ...], must_exist: bool) -> None:
        holder: Any = data
        for key in keys[:-1]:
            holder = holder.get(key) if isinstance(holder, dict) else None
        value = holder.get(keys[-1]) if isinstance(holder, dict) else None
        if isinstance(value, str) and not Path(value).is_absolute() and (not must_exist or (base / value).exists()):
            holder[keys[-1]] = str(base / value)

    for keys in _INPUT_PATHS:
        anchor(keys, must_exist=False)
    for keys in _INPUT_PATHS_OR_NAMES:
        anchor(keys, must_exist=True)
    if isinstance(data.get("accuracy"), dict):
        data["accuracy"]["datasets"] = {task: value if Path(value).is_absolute() else str(base / value)
                                        for task, value in data["accuracy"]["datasets"].items()}
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as exc:  # a path that the spec's directory makes too long
        err = exc.errors(include_url=False)[0]
        raise SpecError(f"{'.'.join(map(str, err['loc']))}, found from {base}: {err['msg']}") from None


def parse_spec(text: str, source: str = "<spec>") -> SweepSpec:
    """Composes the YAML once: the node graph is measured and checked for duplicate keys before any data
    is built from it, so an alias bomb is refused before it expands."""
    try:
        loader = _Loader(text, source)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise SpecError(f"{source}:{line}: YAML syntax error: character U+{exc.character:04X} is not allowed "
                        f"in YAML") from None
    data = None
    try:
        root = loader.get_single_node()
        if root is not None:
            _refuse_big_graph(root, source)
            _refuse_duplicate_keys(root, source)
            data = loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise SpecError(f"{source}{where}: YAML syntax error: {exc.problem}") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a sweep spec is a YAML mapping (name, model, gpu, grid, ...)")
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_describe(exc, root, source)) from None


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing as it composes nesting past MAX_DEPTH (its composer recurses, and a
    few hundred levels overflow Python's stack) and more than MAX_NODES nodes (2 s per 100,000), and
    naming the line of a scalar it cannot convert (`!!int abc`, a date such as 2024-13-45)."""

    def __init__(self, text: str, source: str) -> None:
        super().__init__(text)
        self.source = source
        self.depth = 0
        self.nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            _too_big(self.source, self.peek_event().start_mark)
        if not self.check_event(yaml.CollectionStartEvent):
            return super().compose_node(parent, index)
        self.depth += 1
        if self.depth > MAX_DEPTH:
            _too_deep(self.source, self.peek_event().start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            raise SpecError(f"{self.source}:{node.start_mark.line + 1}: cannot read {_clip(repr(node.value))} as "
                            f"{node.tag.rsplit(':', 1)[-1]}: {_clip(str(exc), 200)}") from None


def _too_deep(source: str, mark: yaml.Mark) -> NoReturn:
    raise SpecError(f"{source}:{mark.line + 1}: nested deeper than {MAX_DEPTH} levels; a sweep spec nests a few")


def _too_big(source: str, mark: yaml.Mark) -> NoReturn:
    raise SpecError(f"{source}:{mark.line + 1}: holds more than {MAX_NODES:,} values (counting each alias as "
                    f"what it stands for); a sweep spec has a few hundred")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _refuse_big_graph(root: yaml.Node, source: str) -> None:
    """An alias is the same node again, so a few lines can stand for billions of values ("billion laughs")
    or for a value that contains itself. Size and depth are worked out per node, once each, iteratively,
    without expanding anything."""
    size: dict[int, int] = {}  # id(node) -> values it expands to
    depth: dict[int, int] = {}
    open_nodes: set[int] = set()  # being measured: meeting one again is a cycle
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, measured_children = stack.pop()
        key = id(node)
        if measured_children:
            children = _children(node)
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            open_nodes.discard(key)
            if size[key] > MAX_NODES:
                _too_big(source, node.start_mark)
            if depth[key] > MAX_DEPTH:
                _too_deep(source, node.start_mark)
        elif key in open_nodes:
            raise SpecError(f"{source}:{node.start_mark.line + 1}: an alias refers to a value that contains it")
        elif key not in size:
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((c, False) for c in _children(node))


def _refuse_duplicate_keys(root: yaml.Node, source: str) -> None:
    """YAML lets a later key silently replace an earlier one; in a spec that is always a mistake. A node
    shared through aliases is checked once."""
    checked: set[int] = set()

    def check(node: yaml.Node, path: str) -> None:
        if id(node) in checked:
            return
        checked.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode):  # `? [a, b]`: unhashable, the constructor refuses it
                    continue
                name = f"{path}.{key.value}" if path else str(key.value)
                if key.value in seen:
                    raise SpecError(f"{source}:{key.start_mark.line + 1}: duplicate key {name!r} "
                                    f"(first on line {seen[key.value]})")
                seen[key.value] = key.start_mark.line + 1
                check(value, name)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                check(item, f"{path}.{i}")

    check(root, "")


def _clip(text: str, limit: int = 60) -> str:
    """Text from the spec, short enough for a one-line error."""
    return text if len(text) <= limit else f"{text[:limit]}...({len(text):,} chars)"


def _describe(exc: ValidationError, root: yaml.Node | None, source: str) -> str:
    """One validation error, as `file:line: key: problem`; an unknown key first, since a misspelt key
    also makes the key it was meant to be look missing."""
    err = min(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    loc = tuple(err["loc"])
    key = ".".join(str(p) for p in loc) or "(top level)"
    line = _line_of(root, loc)
    where = f"{source}:{line}" if line else source
    if err["type"] == "extra_forbidden":
        hint = _nearest_key(loc)
        return f"{where}: unknown key {key!r}" + (f" (did you mean {hint!r}?)" if hint else "")
    if err["type"] == "missing":
        return f"{where}: missing required key {key!r}"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] in ("literal_error", "enum", "greater_than", "less_than_equal", "int_type", "int_from_float",
                       "greater_than_equal", "string_pattern_mismatch", "float_type", "int_parsing",
                       "string_too_long"):
        msg += f" (got {_clip(repr(err['input']))})"
    return f"{where}: {key}: {msg}"


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at `loc`, or of its deepest existing parent."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == part), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _nearest_key(loc: tuple[Any, ...]) -> str | None:
    model: type[BaseModel] = SweepSpec
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        inner = _model_in(field.annotation) if field else None
        if inner is None:
            return None
        model = inner
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.5)
    return close[0] if close else None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
