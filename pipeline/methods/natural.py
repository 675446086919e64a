"""The natural method's wiring: per language, read -> select -> translate -> generate -> judge
-> backtranslate -> qe -> write, each stage saved as a checkpoint, or read back from one
(``pipeline/ops/resume.py`` decides which). Each stage is declared in its own module; this one
lists them in order."""

from __future__ import annotations

import apache_beam as beam

from pipeline.config import Config, to_dict, with_input
from pipeline.methods.shared import Built, Method, counters, run_stages, write_outputs
from pipeline.ops import resume
from transforms.draw.config import has_target
from transforms.draw.stage import DRAW, TRIM, trim_transform
from transforms.languages import Language
from transforms.models import llm
from transforms.models.generate import GENERATE, JUDGE
from transforms.models.qe import QE
from transforms.models.translate import BACKTRANSLATE, TRANSLATE
from transforms.records import spill
from transforms.records.shapes import StageOutput
from transforms.select import dedup, langid
from transforms.select.stage import SELECT, Select
from transforms.sources.cc100 import BATCH_DOCS
from transforms.sources.inputs import ReadSources
from transforms.stages import Context


def run_config(config: Config, lang: Language) -> dict:
    """What the stats record about the parameters of this language's natural run."""
    cfg = config.for_lang(lang.code).select
    bands, rows, min_matches = dedup.bands_of(cfg.dedup)
    label = langid.expected_label(lang, cfg.lid.labels)
    return {
        "preset": config.preset,
        "select": to_dict(cfg),
        "translate": to_dict(config.translate),
        "qe": to_dict(config.qe),
        "llm": llm.recorded(to_dict(config.llm)),  # no secret: server_env, keys, the endpoint's credentials
        "generate": to_dict(config.generate),
        "judge": to_dict(config.judge),
        "sources": to_dict(config.sources),
        **({"target": to_dict(config.for_lang(lang.code).target)} if has_target(config) else {}),
        "resolved": {
            "dedup": {"bands": bands, "rows": rows, "min_band_matches": min_matches},
            "lid": {
                "model": cfg.lid.model_path or "lid.176.ftz (packaged)",
                "expected_label": label,
                "checked": label is not None,
            },
        },
    }


def build(
    p: beam.Pipeline,
    method: Method,
    langs: list[Language],
    config: Config,
    input_template: str,
    output: str,
    plan: resume.Plan,
    fingerprints: dict[str, dict[str, str]],
) -> None:
    """One graph of ``method``'s stages (``NATURAL``'s) for all languages: the language travels with
    each element. The stages of
    ``plan.reused`` are read back from their checkpoints; those of ``plan.run`` run in order,
    each saving its checkpoint; every stage adds its rejects and counts to the same outputs.
    The inputs are ``config.sources``; without any, one CC-100 source reads ``input_template``."""
    config = with_input(config, None, input_template)
    per_lang = {lang.code: (lang, config.for_lang(lang.code).select) for lang in langs}

    def select() -> StageOutput:
        read = {code: cfg.read for code, (_, cfg) in per_lang.items()}
        documents = p | "Read" >> ReadSources(config.sources, langs, read, BATCH_DOCS)
        return documents | "Select" >> Select(per_lang, spill.directory(output))

    context = Context(config, tuple(langs), f"{output}/cache")
    stages = run_stages(p, method, context, output, plan, fingerprints, select)
    if has_target(config):  # the last stage's records cut to the target (the extra: over_target)
        stages.append(Built(stages[-1].out.records | TRIM.title() >> trim_transform(context)))
    write_outputs(stages, output, list(per_lang), {lang.code: run_config(config, lang) for lang in langs},
                  list(fingerprints))


def _configure(config: Config, template: str | None) -> tuple[Config, str]:
    """The sources: config's, ``--input`` the path of the one named cc100 (the bundled sample
    without either)."""
    from pipeline.options import SAMPLE_TEMPLATE

    return with_input(config, template, SAMPLE_TEMPLATE), template or SAMPLE_TEMPLATE


def _dry_run(args, langs, config) -> int:
    from pipeline.ops import dryrun

    return dryrun.run(args, langs, config)


def _memory(config: Config, template: str, langs: list[Language], workers: int) -> str | None:
    """Why select would run out of memory on this machine (``transforms/select/memory.py``)."""
    from transforms.select import memory
    from transforms.sources.inputs import stored_files

    config = with_input(config, None, template)
    text = {code: sum(memory.text_bytes(path, n) for path, n in files)
            for code, files in stored_files(config.sources, langs).items()}
    params = {lang.code: dedup.DedupParams.of(config.for_lang(lang.code).select.dedup) for lang in langs}
    return memory.check(text, params, workers, memory.available_bytes())


def _run_info(result, output: str) -> dict:
    """Rows of the tabular sources that belong to a language the run did not ask for
    (``other_language``), per source, from the run's metrics: counted, not rejects."""
    counts: dict[str, dict[str, int]] = {}
    for namespace, name, n in counters(result, "sources/"):
        entry = counts.setdefault(namespace.split("/", 1)[1], {})
        entry[name] = entry.get(name, 0) + n
    info = {"sources_not_read": dict(sorted(counts.items()))}
    if getattr(result, "tranches", None):  # a run with --target (``pipeline/ops/tranches.py``)
        info["target"] = result.tranches
    return info


NATURAL = Method(
    name="natural",
    stages=(SELECT, TRANSLATE, GENERATE, JUDGE, BACKTRANSLATE, QE),
    build=build,
    configure=_configure,
    sources=lambda config, template: config.sources,
    inputs=lambda config, template, langs: resume.source_identities(config.sources, langs),
    dry_run=_dry_run,
    run_info=_run_info,
    memory=_memory,
    calibrate=True,
    optional=(DRAW,),  # with --target, after select
)
