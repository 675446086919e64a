"""Prints the language table of docs/evol.md: M2Lingual's languages against our CC-100 registry
(transforms/languages.py) and what fastText lid.176 can identify.

    PYTHONPATH=. python docs/evol_languages.py

M2Lingual's paper says 70 languages but does not list them; its dataset card
(huggingface.co/datasets/ServiceNow-AI/M2Lingual, README metadata ``language:``) lists these 58
ISO 639-1 codes. That is the list used here (the table is sorted by name). A code matches our registry
by its CC-100 file code (``zh`` is CC-100's ``zh-Hans``, Simplified Chinese). Whether lid.176
can check a language is the registry's ``lid176`` column; for a language outside the registry,
whether lid.176's own label set (read from the packaged model file) has the code.
tests/unit/test_evol_languages.py checks that docs/evol.md shows this script's output.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transforms.languages import LANGUAGES  # noqa: E402
from transforms.select.langid import default_model_path  # noqa: E402

M2LINGUAL = ("zh ne uk ja zu ku ig mg fi si id sw ar sv ru yo en ht kn ta te sq mr am wo it tr ha pl el "
             "lt ms jv sn ml ps ky es ga gu ko vi sd fa nl hu so pa bn pt da hi eu de ur su xh fr").split()
NAMES_OUTSIDE_REGISTRY = {"sn": "Shona"}


def lid176_labels(path: str | None = None) -> set[str]:
    """The labels of a fastText model file (the dictionary's label entries, without
    ``__label__``), read from the file: the packaged fastText binding cannot list them."""
    data = Path(path or default_model_path()).read_bytes()
    offset = 8 + 12 * 4 + 8  # magic, version; 12 int32 arguments and a double
    size, _, _ = struct.unpack_from("<iii", data, offset)
    offset += 12 + 16  # ntokens, pruneidx_size (int64 each)
    labels = set()
    for _ in range(size):
        end = data.index(b"\0", offset)
        word = data[offset:end].decode("utf-8")
        _, kind = struct.unpack_from("<qb", data, end + 1)
        offset = end + 10
        if kind == 1:
            labels.add(word.removeprefix("__label__"))
    return labels


def rows() -> list[tuple[str, str, str | None, str | None]]:
    """(M2Lingual code, name, our code or None, lid.176 label or None) per language."""
    labels = lid176_labels()
    out = []
    for code in M2LINGUAL:
        match = [lang for lang in LANGUAGES.values()
                 if "_" not in lang.code and lang.cc100.split("-")[0] == code]
        if match:
            lang = match[0]
            out.append((code, lang.name, lang.code, lang.lid176))
        else:
            out.append((code, NAMES_OUTSIDE_REGISTRY.get(code, "?"), None, code if code in labels else None))
    return out


def table() -> str:
    lines = ["| M2Lingual | language | our code (CC-100 registry) | lid.176 can check it |",
             "|---|---|---|---|"]
    for code, name, ours, lid in sorted(rows(), key=lambda r: r[1]):
        lines.append(f"| `{code}` | {name} | {f'`{ours}`' if ours else 'not in the registry'} | "
                     f"{f'yes (`{lid}`)' if lid else 'no'} |")
    data = rows()
    in_registry = sum(r[2] is not None for r in data)
    checkable = sum(r[2] is not None and r[3] is not None for r in data)
    lines.append("")
    lines.append(f"{len(data)} languages: {in_registry} in our registry, {checkable} of them checkable by "
                 f"lid.176 (per-turn language ID is skipped, and the stats say so, for the other "
                 f"{in_registry - checkable}).")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
