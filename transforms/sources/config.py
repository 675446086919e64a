"""The input layer's settings: how CC-100 files are read (``ReadConfig``) and the sources a run
reads (``SourceConfig``, CONTRACT.md "Sources"). Each validates itself when built."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from transforms import languages
from transforms.settings import COUNT, ConfigError, check, check_ranges, operational

# A source is CC-100 text or one of the tabular formats (``transforms/sources/formats.py``).
CC100_KIND = "cc100"
CC100_SOURCE = "cc100"  # the source ``--input`` sets

_SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_SCALAR = (str, int, float, bool, type(None))
_TABULAR_ONLY = ("text_field", "id_field", "lang_field", "lang_values", "where")


@dataclass(frozen=True)
class ReadConfig:
    max_documents: int | None = None  # per CC-100 input file, from its start; None reads everything
    # A longer line is rejected as line_too_long while streaming, before any filter; None: no cap
    max_line_bytes: int | None = 65536
    strict_input: bool = False  # a truncated or corrupt file fails the run (--strict-input)
    # parts a CC-100 file is read in, each by one worker (cc100.ReadCC100); None: one a local
    # worker, 16 on a cluster's runner
    file_parts: int | None = operational(None)

    def __post_init__(self):
        check_ranges(self, max_documents=COUNT, max_line_bytes=COUNT, file_parts=COUNT)


@dataclass(frozen=True)
class SourceConfig:
    """One input of the natural method: CC-100 text, or a tabular file set (JSONL, Parquet) of
    human-curated examples whose ``text_field`` holds a response. ``path`` is a path or glob on
    any Beam filesystem; ``{lang}`` in it is our code, ``{cc100}`` CC-100's. A tabular source
    without ``lang_field`` takes each file's language from its path. ``lang_values`` maps our
    codes to the values the source writes (default: our code); ``where`` keeps the rows whose
    column equals a value (or is one of a list's)."""

    name: str = CC100_SOURCE
    kind: str = CC100_KIND
    path: str = ""
    text_field: str | None = None
    id_field: str | None = None
    lang_field: str | None = None
    lang_values: dict[str, str] = field(default_factory=dict)
    where: dict[str, Any] = field(default_factory=dict)

    @property
    def tabular(self) -> bool:
        return self.kind != CC100_KIND

    @property
    def per_lang_path(self) -> bool:
        """Whether the path names the language (one file set per language)."""
        return "{lang}" in self.path or "{cc100}" in self.path

    def __post_init__(self):
        """The settings make sense for the source's kind."""
        where = f"source {self.name!r}"
        check(isinstance(self.name, str) and bool(_SOURCE_NAME.fullmatch(self.name)),
              f"{where}: name must be lower-case letters, digits, _ or - (it names the source in records and stats)")
        from transforms.sources.formats import FORMATS  # imports Beam's filesystems: not at config's import

        kinds = (CC100_KIND, *FORMATS)
        check(self.kind in kinds, f"{where}: kind must be one of {', '.join(kinds)}, got {self.kind!r}")
        check(bool(self.path), f"{where}: path is required (a path or glob; {{lang}} or {{cc100}} name the language)")
        if not self.tabular:
            given = [k for k in _TABULAR_ONLY if getattr(self, k)]
            check(not given, f"{where}: {', '.join(given)} apply to {' and '.join(FORMATS)} sources, not cc100")
            return
        check(bool(self.text_field), f"{where}: text_field is required: the column that holds the response")
        check(bool(self.lang_field) or self.per_lang_path,
              f"{where}: give lang_field (the column that names each row's language) or put {{lang}} or "
              "{cc100} in the path")
        check(not self.lang_values or bool(self.lang_field), f"{where}: lang_values needs lang_field")
        for code, value in self.lang_values.items():
            try:
                languages.get(code)
            except languages.UnknownLanguageError as e:
                raise ConfigError(f"{where}.lang_values: {e}") from e
            check(isinstance(value, str) and bool(value),
                  f"{where}.lang_values.{code}: expected the value the source writes, got {value!r}")
        for column, wanted in self.where.items():
            values = wanted if isinstance(wanted, list) else [wanted]
            check(bool(values) and all(isinstance(v, _SCALAR) for v in values),
                  f"{where}.where.{column}: expected a value or a non-empty list of values, got {wanted!r}")


def check_sources(sources: tuple[SourceConfig, ...]) -> None:
    """The sources' names are distinct (each source checks its own settings)."""
    seen = set()
    for s in sources:
        check(s.name not in seen, f"sources: two sources are named {s.name!r}")
        seen.add(s.name)
