"""Prompts as versioned files, loaded by id: ``load("mcq@1")`` or ``load("mcq")`` (newest).

Each ``files/{id}@{version}.yaml`` holds a ``kind`` (task or judge), the ``template`` (Python
``str.format`` fields: ``{response}`` and, for the judge, ``{instruction}``), and for tasks the
JSON ``schema`` of the answer the LLM must give (vLLM structured outputs) and the ``fields`` of
that answer that make up the instruction. Records name the prompt they used (``mcq@2``).

From version 2 a prompt has a ``system`` message (the task or rubric) and its ``template`` is
the user message: the data between delimiters (``<response>...</response>``). ``messages``
renders both, every field ``neutralise``d first, so a response that contains ``</response>``,
a chat-template marker (``<|eot_id|>``, ``[INST]``, ...) or a ``Score:`` line can neither end
its section nor open a new turn.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

FILES = Path(__file__).parent / "files"
_NAME = re.compile(r"^(?P<id>[a-z][a-z0-9_]*)@(?P<version>[0-9]+)$")
# What data must not carry into a prompt: our delimiters, chat-template markers (``<|...|>``
# special tokens of Llama 3, ChatML, Phi; ``<s>``, ``[INST]``, ``<<SYS>>`` of Llama 2 and
# Mistral; Gemma's turns) and a line that starts like the judge's verdict.
HOSTILE = re.compile(
    r"</?\s*(?:instruction|response)\s*>"
    r"|<\|[^|<>\s]{1,40}\|>"
    r"|</?s>|\[/?(?:INST|SYSTEM_PROMPT|AVAILABLE_TOOLS|TOOL_CALLS)\]|<</?SYS>>"
    r"|<(?:start|end)_of_turn>"
    r"|^[ \t*#>_-]*score\s*:",
    re.IGNORECASE | re.MULTILINE,
)
_BREAK = "\u200b"  # zero-width space: the text reads the same, the marker no longer matches


def neutralise(text: str) -> str:
    """``text`` with a zero-width space before the last character of every ``HOSTILE``
    match: no delimiter, special token or verdict line survives (nor can one be formed)."""
    return HOSTILE.sub(lambda m: m[0][:-1] + _BREAK + m[0][-1], text)


@dataclass(frozen=True)
class Prompt:
    id: str
    version: int
    kind: str  # task | judge
    template: str  # the user message
    schema: dict | None = None  # JSON schema of the structured answer (tasks)
    description: str = ""
    system: str = ""  # the system message (from version 2)

    @property
    def name(self) -> str:
        return f"{self.id}@{self.version}"

    def render(self, **fields: str) -> str:
        """The user message, with every field neutralised."""
        return self.template.format(**{k: neutralise(v) for k, v in fields.items()})

    def messages(self, **fields: str) -> tuple[dict, ...]:
        """The chat request's messages: the system message (if any), then the user's."""
        system = ({"role": "system", "content": self.system.format().strip()},) if self.system else ()
        return (*system, {"role": "user", "content": self.render(**fields).strip()})


@functools.lru_cache(maxsize=None)
def versions(folder: Path) -> dict[str, list[int]]:
    """File id -> its versions, ascending, for the ``id@version.yaml`` files of ``folder``
    (cached: prompt files do not change during a run)."""
    found: dict[str, list[int]] = {}
    for path in folder.glob("*.yaml"):
        m = _NAME.match(path.stem)
        if m:
            found.setdefault(m["id"], []).append(int(m["version"]))
    return {k: sorted(v) for k, v in sorted(found.items())}


def available() -> dict[str, list[int]]:
    """Prompt id -> its versions, ascending."""
    return versions(FILES)


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
