"""Build the page-furniture development set: web pages in CC-100 format, with labels.

    python benchmarks/furniture_dev/build.py [--seed S --out DIR]

Each ``pools/{lang}.yaml`` holds text written for this set in one language: genuine prose
paragraphs, and the furniture of three made-up sites (menus, footers, a cookie / login / newsletter
prompt each) plus headings, buttons,
captions, and UI messages with placeholders or markup.
Pages are assembled the way CMS pages come out of a text extractor (menu, heading, prose with
captions and messages between paragraphs, buttons, a prompt, footer), seeded, so the output is
the same on every run. Writes ``{lang}.txt`` (one paragraph a line, a blank line between
documents) and ``{lang}.labels.jsonl`` (``{"text", "label"}``: ``genuine`` or
``furniture:<kind>``), the shape of ``tests/data/*.labels.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
DOCS = 10  # per language; every genuine paragraph is used once


def build_documents(pools: dict, rng: random.Random) -> list[list[tuple[str, str]]]:
    """Documents as lists of (paragraph, label)."""
    prose = list(pools["prose"])
    sizes = [2] * DOCS
    for _ in range(3):  # some pages carry one paragraph, some three
        i, j = rng.sample(range(DOCS), 2)
        if sizes[i] > 0:  # a page may have no prose (an index page), never fewer
            sizes[i], sizes[j] = sizes[i] - 1, sizes[j] + 1
    assert sum(sizes) == len(prose), "pools must hold 2 * DOCS prose paragraphs"
    docs = []
    for d in range(DOCS):
        site = pools["sites"][d % len(pools["sites"])]
        page: list[tuple[str, str]] = []
        if rng.random() < 0.35:  # a long one-line menu, as some extractors emit it
            line = " ".join(site["menu"] + rng.sample(pools["buttons"], 3) + [site["footer"][1]])
            page.append((line, "furniture:menu"))
        else:
            page += [(item, "furniture:menu") for item in site["menu"]]
        page.append((pools["headings"][d], "furniture:heading"))
        for k in range(sizes[d]):
            page.append((prose.pop(0), "genuine"))
            if rng.random() < 0.3:
                page.append((rng.choice(pools["captions"]), "furniture:caption"))
            if k < sizes[d] - 1 and rng.random() < 0.4:
                page.append((rng.choice(pools["messages"]), "furniture:placeholder"))
        if rng.random() < 0.5:
            page.append((rng.choice(pools["messages"]), "furniture:placeholder"))
        page += [(b, "furniture:button") for b in rng.sample(pools["buttons"], rng.randint(1, 3))]
        if rng.random() < 0.7:  # a site's template shows the same prompt on its pages
            page.append((pools["prompts"][d % len(pools["sites"])], "furniture:prompt"))
        page += [(f, "furniture:footer") for f in site["footer"]]
        seen: set[str] = set()  # a page never repeats a line (the menu and a button may agree)
        docs.append([(t, label) for t, label in page if not (t in seen or seen.add(t))])
    return docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", default="", help="another layout of the same pools (robustness)")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in sorted((HERE / "pools").glob("*.yaml")):
        lang = path.stem
        pools = yaml.safe_load(path.read_text(encoding="utf-8"))
        docs = build_documents(pools, random.Random(f"furniture-dev/{lang}{args.seed}"))
        with open(args.out / f"{lang}.txt", "w", encoding="utf-8") as f:
            f.write("".join("\n".join(t for t, _ in doc) + "\n\n" for doc in docs))
        labels = {t: label for doc in docs for t, label in doc}
        with open(args.out / f"{lang}.labels.jsonl", "w", encoding="utf-8") as f:
            for text, label in labels.items():
                f.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")
        print(lang, len(docs), "documents,", sum(map(len, docs)), "paragraphs")


if __name__ == "__main__":
    main()
