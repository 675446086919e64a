"""Selection quality on the labelled sample: what the labels say about the kept records."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

LABELS_DIR = Path(__file__).parent / "data"


def load_labels(lang: str) -> dict[str, str]:
    labels = {}
    with open(LABELS_DIR / f"{lang}.labels.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            labels[row["text"]] = row["label"]
    return labels


def kept_paragraphs(out_dir: Path, lang: str) -> list[str]:
    paragraphs = []
    for part in sorted((Path(out_dir) / "data" / lang).glob("part-*.jsonl")):
        for line in part.read_text(encoding="utf-8").splitlines():
            paragraphs.extend(json.loads(line)["response"].split("\n"))
    return paragraphs


def quality(out_dir: Path, lang: str) -> dict:
    """Shares the acceptance criteria name, computed from the labels."""
    labels = load_labels(lang)
    kept = kept_paragraphs(out_dir, lang)
    kinds = Counter(labels.get(p, "unlabelled").split(":")[0] for p in kept)

    def group(text: str) -> str:  # a near-duplicate belongs to the group of its original
        label = labels.get(text, "")
        return label[len("near_dup:"):] if label.startswith("near_dup:") else text

    groups = Counter(group(p) for p in kept)
    genuine_long = [t for t, label in labels.items() if label == "genuine" and len(t) >= 80]
    foreign = [t for t, label in labels.items() if label == "foreign"]
    kept_set = set(kept)
    return {
        "lang": lang,
        "kept_paragraphs": len(kept),
        "junk_share_of_kept": kinds["junk"] / len(kept) if kept else 0.0,
        "foreign_kept_share": sum(t in kept_set for t in foreign) / len(foreign) if foreign else 0.0,
        "genuine_80_kept_share": sum(t in kept_set for t in genuine_long) / len(genuine_long),
        "max_copies_of_a_group": max(groups.values(), default=0),
        "unlabelled_kept": kinds["unlabelled"],
    }
