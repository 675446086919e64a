"""The evol method's prompt taxonomy (M2Lingual style), loaded from ``prompts/evol/``.

```
prompts/evol/
  tasks@N.yaml                      task ids, descriptions, the seed labels that map to each
  templates/{id}@N.yaml             the four prompts: evolve (step 1), user_turn and
                                    assistant_turn (step 2), conversation_judge (QC)
  step1/{task}/{operation}@N.yaml   step 1: the evolution operations of each task
  step2/{structure}@N.yaml          step 2: the dialogue structures
```

A template holds a ``system`` message (the rubric: instructions, rules, the JSON shape of the
answer), a ``user`` message (the data between delimiters) and the JSON ``schema`` of the answer,
every free-text string bounded by ``maxLength``. Operations and structures hold ``guidance``,
the text that goes into the template's ``{operation_guidance}`` / ``{structure_guidance}``.
Everything is checked when loaded: placeholders each kind of file may use, the data fields
its user message must carry, a bounded schema, no unknown keys. Names are ``id@version``;
``load_*("id")`` gives the newest version.
"""

from __future__ import annotations

import functools
import re
import string
from dataclasses import dataclass
from pathlib import Path

import yaml

from prompts import versions as file_versions

ROOT = Path(__file__).parent / "evol"

# kind -> (placeholders the system message may use, data fields the user message must carry)
TEMPLATE_FIELDS = {
    "evolve": (frozenset({"language", "task", "task_description", "operation", "operation_guidance"}),
               frozenset({"seed_instruction", "seed_response"})),
    "user_turn": (frozenset({"language", "task", "task_description", "structure", "structure_guidance",
                             "turn", "turns"}),
                  frozenset({"conversation"})),
    "assistant_turn": (frozenset({"language", "task", "task_description"}), frozenset({"conversation"})),
    "judge": (frozenset({"language", "task", "task_description"}), frozenset({"conversation"})),
}
GUIDANCE_FIELDS = frozenset({"language"})  # an operation's or structure's guidance may name the language


class PromptError(ValueError):
    """A taxonomy file that is missing, unknown or malformed."""


@dataclass(frozen=True)
class Task:
    id: str
    description: str
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class Template:
    id: str
    version: int
    kind: str  # evolve | user_turn | assistant_turn | judge
    system: str
    user: str
    schema: dict
    description: str = ""

    @property
    def name(self) -> str:
        return f"{self.id}@{self.version}"

    def messages(self, system: dict[str, str], user: dict[str, str]) -> tuple[dict, dict]:
        """(system message, user message). ``user`` values must already be neutralised."""
        return ({"role": "system", "content": self.system.format(**system)},
                {"role": "user", "content": self.user.format(**user)})


@dataclass(frozen=True)
class Guided:
    """An evolution operation of a task (``task`` set) or a dialogue structure (``task`` None)."""

    id: str
    version: int
    description: str
    guidance: str
    task: str | None = None

    @property
    def name(self) -> str:
        return f"{self.id}@{self.version}"

    @property
    def path(self) -> str:
        """The name with its task: ``closed_qa/add_constraints@1`` (provenance)."""
        return f"{self.task}/{self.name}" if self.task else self.name

    def render(self, language: str) -> str:
        return self.guidance.format(language=language).strip()


def placeholders(text: str) -> set[str]:
    """The ``str.format`` fields of ``text``; a PromptError for unbalanced braces."""
    try:
        return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
    except ValueError as e:
        raise PromptError(f"bad braces: {e}") from None


def _resolve(name: str, versions: dict[str, list[int]], what: str) -> tuple[str, int]:
    ident, _, version = name.partition("@")
    if ident not in versions:
        raise PromptError(f"unknown {what} {name!r}; available: {', '.join(versions) or 'none'}")
    number = int(version) if version.isdigit() else versions[ident][-1] if not version else -1
    if number not in versions[ident]:
        raise PromptError(f"unknown {what} version {name!r}; {ident} has {versions[ident]}")
    return ident, number


def _read(path: Path, kind: str | tuple[str, ...], keys: set[str]) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise PromptError(f"{path}: {e}") from None
    if not isinstance(data, dict):
        raise PromptError(f"{path}: not a mapping")
    kinds = (kind,) if isinstance(kind, str) else kind
    if data.get("kind") not in kinds:
        raise PromptError(f"{path}: kind must be {' or '.join(kinds)}, got {data.get('kind')!r}")
    unknown = set(data) - keys - {"kind"}
    if unknown:
        raise PromptError(f"{path}: unknown keys {sorted(unknown)}")
    return data


# ---------------------------------------------------------------- tasks


@functools.lru_cache(maxsize=None)
def tasks(version: int | None = None) -> dict[str, Task]:
    """Task id -> Task, from ``tasks@{version}.yaml`` (newest by default)."""
    _, number = _resolve(f"tasks@{version}" if version else "tasks", file_versions(ROOT), "task list")
    path = ROOT / f"tasks@{number}.yaml"
    data = _read(path, "evol_tasks", {"description", "tasks"})
    out = {}
    for ident, spec in (data.get("tasks") or {}).items():
        if not re.fullmatch(r"[a-z][a-z0-9_]*", ident) or not isinstance(spec, dict):
            raise PromptError(f"{path}: bad task {ident!r}")
        if set(spec) - {"description", "aliases"} or not str(spec.get("description", "")).strip():
            raise PromptError(f"{path}: task {ident} needs a description (and only aliases beside it)")
        out[ident] = Task(ident, str(spec["description"]).strip(), tuple(str(a) for a in spec.get("aliases", ())))
    if not out:
        raise PromptError(f"{path}: no tasks")
    return out


def _label_key(label: str) -> str:
    return re.sub(r"[\s\-]+", "_", label.strip().casefold())


@functools.lru_cache(maxsize=None)
def _aliases() -> dict[str, str]:
    out: dict[str, str] = {}
    for task in tasks().values():
        for label in (task.id, *task.aliases):
            key = _label_key(label)
            if out.setdefault(key, task.id) != task.id:
                raise PromptError(f"seed label {label!r} maps to both {out[key]} and {task.id}")
    return out


def task_of(label: str | None) -> str | None:
    """Our task id for a seed's task label (case, spaces and hyphens ignored); None if unknown."""
    if label is None or not str(label).strip():
        return None
    return _aliases().get(_label_key(str(label)))


# ---------------------------------------------------------------- templates


def templates() -> dict[str, list[int]]:
    return file_versions(ROOT / "templates")


@functools.lru_cache(maxsize=None)
def load_template(name: str) -> Template:
    ident, number = _resolve(name, templates(), "template")
    path = ROOT / "templates" / f"{ident}@{number}.yaml"
    data = _read(path, tuple(TEMPLATE_FIELDS), {"description", "system", "user", "schema"})
    kind = data["kind"]
    system, user = str(data.get("system") or ""), str(data.get("user") or "")
    allowed, required = TEMPLATE_FIELDS[kind]
    if not system.strip() or not user.strip():
        raise PromptError(f"{path}: needs a system and a user message")
    if placeholders(system) - allowed:
        raise PromptError(f"{path}: unknown placeholders in system: {sorted(placeholders(system) - allowed)}")
    if placeholders(user) != required:
        raise PromptError(f"{path}: the user message must carry exactly {sorted(required)}, "
                          f"has {sorted(placeholders(user))}")
    for field in required:  # each data field alone on its line, between delimiter lines
        if not re.search(r"(?m)^<[a-z_]+[^>\n]*>\n\{" + field + r"\}\n</[a-z_]+>$", user):
            raise PromptError(f"{path}: {{{field}}} must sit alone between an opening and a closing tag line")
    check_schema(data.get("schema"), str(path))
    return Template(ident, number, kind, system, user, data["schema"], str(data.get("description", "")))


def check_schema(schema, where: str) -> None:
    """A JSON object schema whose properties are all required, with every free-text string
    bounded (so a constrained answer always closes) and integers given as an enum."""
    if not isinstance(schema, dict) or schema.get("type") != "object" or not schema.get("properties"):
        raise PromptError(f"{where}: schema must be a JSON object schema with properties")
    props = schema["properties"]
    if sorted(schema.get("required", ())) != sorted(props) or schema.get("additionalProperties") is not False:
        raise PromptError(f"{where}: schema must require every property and forbid others")
    for key, prop in props.items():
        kind = prop.get("type") if isinstance(prop, dict) else None
        if kind == "string" and "enum" not in prop:
            if not isinstance(prop.get("maxLength"), int) or prop.get("minLength", 0) < 1:
                raise PromptError(f"{where}: string {key!r} needs minLength >= 1 and a maxLength")
        elif kind == "integer":
            if not prop.get("enum"):  # some structured-output backends ignore integer bounds
                raise PromptError(f"{where}: integer {key!r} needs an enum of its values")
        elif kind != "string":
            raise PromptError(f"{where}: property {key!r} must be a string or an integer")


# ---------------------------------------------------------------- operations and structures


def operations(task: str) -> dict[str, list[int]]:
    """Operation id -> versions, for ``task``."""
    if task not in tasks():
        raise PromptError(f"unknown task {task!r}; available: {', '.join(tasks())}")
    return file_versions(ROOT / "step1" / task)


def structures() -> dict[str, list[int]]:
    """Dialogue structure id -> versions."""
    return file_versions(ROOT / "step2")


def _guided(path: Path, kind: str, ident: str, number: int, task: str | None) -> Guided:
    data = _read(path, kind, {"description", "guidance"})
    guidance, description = str(data.get("guidance") or ""), str(data.get("description") or "")
    if not guidance.strip() or not description.strip():
        raise PromptError(f"{path}: needs a description and guidance")
    if placeholders(guidance) - GUIDANCE_FIELDS:
        raise PromptError(f"{path}: unknown placeholders {sorted(placeholders(guidance) - GUIDANCE_FIELDS)}")
    return Guided(ident, number, description.strip(), guidance, task)


@functools.lru_cache(maxsize=None)
def load_operation(task: str, name: str) -> Guided:
    """The operation ``name`` (``id@version`` or ``id``, the newest) of ``task``."""
    ident, number = _resolve(name, operations(task), f"operation of {task}")
    return _guided(ROOT / "step1" / task / f"{ident}@{number}.yaml", "operation", ident, number, task)


@functools.lru_cache(maxsize=None)
def load_structure(name: str) -> Guided:
    ident, number = _resolve(name, structures(), "dialogue structure")
    return _guided(ROOT / "step2" / f"{ident}@{number}.yaml", "structure", ident, number, None)


def validate_all() -> list[str]:
    """Loads every file of the taxonomy (a PromptError on the first bad one); their names."""
    names = [f"tasks@{v}" for v in file_versions(ROOT).get("tasks", [])]
    for v in names:
        tasks(int(v.split("@")[1]))
    _aliases()
    for ident, versions in templates().items():
        names += [load_template(f"{ident}@{v}").name for v in versions]
    for task in tasks():
        if not operations(task):
            raise PromptError(f"task {task} has no operations under step1/{task}/")
        for ident, versions in operations(task).items():
            names += [load_operation(task, f"{ident}@{v}").path for v in versions]
    for ident, versions in structures().items():
        names += [load_structure(f"{ident}@{v}").name for v in versions]
    stray = {p.name for p in (ROOT / "step1").iterdir() if p.is_dir()} - set(tasks())
    if stray:
        raise PromptError(f"step1/ has folders for unknown tasks: {sorted(stray)}")
    return names
