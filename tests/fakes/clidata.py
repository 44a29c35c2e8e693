"""trtllm-bench's real command line per release, as data: tests/data/trtllm_bench_options.json is a copy of
the reference, which read each release's click options from NVIDIA's source at its release commit (with
what this project read beyond it: see the file's `about`).

`parse` accepts what that release's click parser accepts and refuses the rest with click's own messages
(a UsageError, exit 2); `broken_rules` names the cross-option checks the release's code makes after
parsing (an exception, exit 1); `llm_api_problems` the LLM-API YAML keys its config classes refuse (pydantic
extra='forbid', exit 1); `misapplied` what the release accepts but applies wrongly (logged, the run goes on).
The fake trtllm-bench uses them all, and the tests check trtbench's argument lists with them, so neither
relies on trtbench's own idea of what a release takes.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "data" / "trtllm_bench_options.json"
LATENCY = DATA.with_name("trtllm_bench_latency_options.json")  # latency per release, from NVIDIA's source (its about)
_TRUE, _FALSE = ("true", "1", "yes", "y", "on", "t"), ("false", "0", "no", "n", "off", "f")


class UsageError(Exception):
    """What click prints after "Error: " before exiting 2."""


@dataclass
class Parsed:
    globals: dict[str, Any] = field(default_factory=dict)  # by each option's first name
    command: str = ""
    options: dict[str, Any] = field(default_factory=dict)


@cache
def _data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DATA.read_text())
    return data


def releases() -> list[str]:
    return list(_data()["releases"])


def release(version: str) -> dict[str, Any]:
    """The option set of `version` (e.g. 1.1.0rc3); a release newer than the newest known has its options."""
    match = re.match(r"(\d+)\.(\d+)", version)
    assert match, version
    key = f"{int(match[1])}.{int(match[2])}"
    known = _data()["releases"]
    newest = _data()["newest"]
    if key not in known and (int(match[1]), int(match[2])) > tuple(map(int, newest.split("."))):
        key = newest
    if key not in known:
        raise KeyError(f"no reference for TensorRT-LLM {version}")
    rel = dict(known[key])
    latency = _latency().get(key)
    if latency is not None:
        rel["commands"] = {**rel["commands"], "latency": latency}
    return rel


@cache
def _latency() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(LATENCY.read_text())["releases"]
    return data


def parse(rel: dict[str, Any], argv: list[str]) -> Parsed:
    """argv without the program name, as the release's click group parses it."""
    parsed = Parsed()
    parsed.globals, rest = _options(rel["global"], argv, "")
    _required(rel["global"], parsed.globals)
    if not rest:
        raise UsageError("Missing command.")
    parsed.command, rest = rest[0], rest[1:]
    if parsed.command not in rel["commands"]:
        raise UsageError(f"No such command '{parsed.command}'.")
    specs = rel["commands"][parsed.command]
    if isinstance(specs, str):  # the reference knows the command exists, not its options: take them as given
        parsed.options = _unchecked(rest)
        return parsed
    parsed.options, extra = _options(specs, rest, parsed.command)
    if extra:
        raise UsageError(f"Got unexpected extra argument ({extra[0]})")
    _required(specs, parsed.options)
    _groups(specs, parsed.options)
    return parsed


def _options(specs: list[dict[str, Any]], argv: list[str], where: str) -> tuple[dict[str, Any], list[str]]:
    by_name: dict[str, tuple[dict[str, Any], bool]] = {}
    for spec in specs:
        for name in spec["names"]:
            by_name[name] = (spec, True)
        if spec["type"] == "bool_pair":
            by_name[spec["secondary"]] = (spec, False)
    values: dict[str, Any] = {}
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        name, eq, inline = argv[i].partition("=")
        i += 1
        if name not in by_name:
            raise UsageError(f"No such option: {name}")
        spec, positive = by_name[name]
        key = spec["names"][0]
        if spec["type"] == "flag":
            values[key] = True
        elif spec["type"] == "bool_pair":
            values[key] = positive
        else:
            if not eq:
                if i >= len(argv):
                    raise UsageError(f"Option '{name}' requires an argument.")
                inline, i = argv[i], i + 1
            value = _convert(spec, name, inline)
            values[key] = [*values.get(key, []), value] if spec.get("multiple") else value
    return values, argv[i:]


def _unchecked(argv: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for i, token in enumerate(argv):
        if token.startswith("-"):
            value = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("-") else True
            values[token] = int(value) if isinstance(value, str) and value.isdigit() else value
    return values


def _convert(spec: dict[str, Any], name: str, raw: str) -> Any:
    kind = spec["type"]
    try:
        if kind in ("int", "int_min1"):
            value: Any = int(raw)
            if kind == "int_min1" and value < 1:
                raise UsageError(f"Invalid value for '{name}': {value} is not in the range x>=1.")
            return value
        if kind == "float":
            return float(raw)
    except ValueError:
        what = "integer" if kind != "float" else "float"
        raise UsageError(f"Invalid value for '{name}': '{raw}' is not a valid {what}.") from None
    if kind == "choice" and raw not in spec["choices"]:
        choices = ", ".join(f"'{c}'" for c in spec["choices"])
        raise UsageError(f"Invalid value for '{name}': '{raw}' is not one of {choices}.")
    if kind == "bool_value":
        if raw.lower() not in (*_TRUE, *_FALSE):
            raise UsageError(f"Invalid value for '{name}': '{raw}' is not a valid boolean.")
        return raw.lower() in _TRUE
    if kind == "path_exists" and not os.path.exists(raw):
        raise UsageError(f"Invalid value for '{name}': Path '{raw}' does not exist.")
    if kind == "path_file" and os.path.isdir(raw):
        raise UsageError(f"Invalid value for '{name}': File '{raw}' is a directory.")
    return raw


def _required(specs: list[dict[str, Any]], values: dict[str, Any]) -> None:
    for spec in specs:
        if spec.get("required") and spec["names"][0] not in values:
            raise UsageError(f"Missing option '{' / '.join(spec['names'])}'.")


def _groups(specs: list[dict[str, Any]], values: dict[str, Any]) -> None:
    """click-option-group: a mutex group takes at most one option, an `all` group all or none."""
    groups: dict[tuple[str, str], list[str]] = {}
    for spec in specs:
        if "group" in spec:
            groups.setdefault((spec["group"], spec["group_cls"]), []).append(spec["names"][0])
    for (group, kind), names in groups.items():
        given = [n for n in names if n in values]
        if kind == "mutex" and len(given) > 1:
            raise UsageError(f"Mutually exclusive options from '{group}' option group cannot be used at the same "
                             f"time: {', '.join(given)}")
        if kind == "all" and given and len(given) != len(names):
            raise UsageError(f"All options from '{group}' option group should be specified: {', '.join(names)}")
        if kind == "required_mutex" and len(given) != 1:
            raise UsageError(f"Exactly one option from '{group}' option group is required: {', '.join(names)}")


def broken_rules(rel: dict[str, Any], parsed: Parsed) -> list[str]:
    """The messages of the release's own checks that `parsed` fails (the first one ends the run)."""
    opts, rules, found = parsed.options, set(rel["rules"]), []
    if parsed.command in ("throughput", "latency"):
        engine = "--engine_dir" in opts
        backend = opts.get("--backend", rel.get("backend_default"))
        if "trt_engine_required" in rules and not engine:
            found.append("Missing option '--engine_dir'.")
        if "trt_engine_required_unless_pytorch" in rules and backend != "pytorch" and not engine:
            found.append("ValueError: --engine_dir is required when not using the PyTorch backend")
        if "backend_tensorrt_needs_engine" in rules and backend == "tensorrt" and not engine:
            found.append("ValueError: --engine_dir is required for the TensorRT backend")
        if "trt_no_max_seq_len" in rules and engine and backend in (None, "tensorrt") and "--max_seq_len" in opts:
            found.append("AssertionError: max_seq_len is not a runtime parameter for C++ backend")
    if parsed.command == "build":
        modes = [("--dataset",), ("--max_batch_size", "--max_num_tokens"),
                 ("--target_input_len", "--target_output_len")]
        if "build_one_mode" in rules and sum(all(k in opts for k in m) for m in modes) > 1:
            found.append("Multiple engine build options detected, please choose only one engine build option. "
                         "Exiting.")
        if "build_needs_max_seq_len" in rules and "--max_seq_len" not in opts and "--dataset" not in opts:
            found.append("Unspecified max_seq_len for engine build. Exiting.")
        if "build_world_le_8" in rules and opts.get("--tp_size", 1) * opts.get("--pp_size", 1) > 8:
            found.append("ValueError: TP x PP above 8 is not supported by trtllm-bench build")
    return found


def yaml_keys(text: str) -> dict[str, set[str]]:
    """Top-level keys of a block-style YAML mapping (as yaml.safe_dump writes one), each with the keys one level
    under it. Enough for the LLM-API options file, without PyYAML (the fake's Python has only the stdlib)."""
    keys: dict[str, set[str]] = {}
    top = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "-")) or ":" not in stripped:
            continue
        indent = len(line) - len(line.lstrip(" "))
        key = stripped.split(":", 1)[0].strip("'\"")
        if indent == 0:
            top = key
            keys[top] = set()
        elif top is not None and indent == 2:
            keys[top].add(key)
    return keys


def llm_api_problems(rel: dict[str, Any], text: str) -> list[str]:
    """The keys of an LLM-API options file that this release's config classes refuse: a key listed as rejected,
    or any key not accepted in a section marked closed (the data's `llm_api_keys`; null: anything goes)."""
    rules = rel.get("llm_api_keys")
    if not rules:
        return []
    found = []

    def check(where: str, section: dict[str, Any] | None, key: str) -> None:
        if section and (key in section["rejected"] or (section["closed"] and key not in section["accepted"])):
            found.append(f"pydantic_core._pydantic_core.ValidationError: {where}{key}: Extra inputs are not permitted")

    for top, nested in yaml_keys(text).items():
        check("", rules["top"], top)
        for key in sorted(nested):
            check(f"{top}.", rules["nested"].get(top), key)
    return found


def misapplied(rel: dict[str, Any], parsed: Parsed) -> list[str]:
    """What the release accepts but applies otherwise than asked (rule runtime_max_tokens_is_max_bs)."""
    if "runtime_max_tokens_is_max_bs" in rel["rules"] and parsed.options.get("--max_num_tokens"):
        return ["semantics_warning: --max_num_tokens runs as the max batch size (runtime_max_tokens = runtime_max_bs "
                "if runtime_max_tokens else engine_tokens)"]
    return []
