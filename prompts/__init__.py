"""Prompts as versioned files, loaded by id: ``load("mcq@1")`` or ``load("mcq")`` (newest).

Each ``files/{id}@{version}.yaml`` holds a ``kind`` (task or judge), the ``template`` (Python
``str.format`` fields: ``{response}`` and, for the judge, ``{instruction}``), and for tasks the
JSON ``schema`` of the answer the LLM must give (vLLM structured outputs) and the ``fields`` of
that answer that make up the instruction. Records name the prompt they used (``mcq@1``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

FILES = Path(__file__).parent / "files"
_NAME = re.compile(r"^(?P<id>[a-z_]+)@(?P<version>[0-9]+)$")


@dataclass(frozen=True)
class Prompt:
    id: str
    version: int
    kind: str  # task | judge
    template: str
    schema: dict | None = None  # JSON schema of the structured answer (tasks)
    description: str = ""

    @property
    def name(self) -> str:
        return f"{self.id}@{self.version}"

    def render(self, **fields: str) -> str:
        return self.template.format(**fields)


@functools.lru_cache(maxsize=None)
def available() -> dict[str, list[int]]:
    """Prompt id -> its versions, ascending."""
    versions: dict[str, list[int]] = {}
    for path in FILES.glob("*.yaml"):
        m = _NAME.match(path.stem)
        if m:
            versions.setdefault(m["id"], []).append(int(m["version"]))
    return {k: sorted(v) for k, v in sorted(versions.items())}


@functools.lru_cache(maxsize=None)
def load(name: str) -> Prompt:
    """The prompt ``id@version``, or the newest version of ``id``."""
    prompt_id, _, version = name.partition("@")
    if prompt_id not in available():
        raise KeyError(f"unknown prompt {name!r}; available: {', '.join(available())}")
    number = int(version) if version else available()[prompt_id][-1]
    path = FILES / f"{prompt_id}@{number}.yaml"
    if not path.is_file():
        raise KeyError(f"unknown prompt version {name!r}; {prompt_id} has {available()[prompt_id]}")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return Prompt(id=prompt_id, version=number, **data)
