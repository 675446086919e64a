"""Which stages a run can take from its checkpoints, and which it must (re)do.

A stage's fingerprint hashes what determines its output: the fingerprint of the stage before
it, and its own config (model, prompts' text, sampling, thresholds; not batch sizes, devices
or endpoints, which do not change what comes out). The select stage starts from the input
files' names, sizes and modification times. So a change to a stage's config, or to its input,
redoes that stage and every one after it; anything else is read back from the checkpoint.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems

import prompts
from pipeline.config import CC100_SOURCE, METHODS, Config, SourceConfig, to_dict
from pipeline.languages import Language
from transforms.records import checkpoint
from transforms.records.cache import digest

logger = logging.getLogger(__name__)

# Settings that change how fast a stage runs or where, never what it outputs.
OPERATIONAL = frozenset({
    "device", "records_per_batch", "batch_tokens", "sort_by_length", "share_model", "batch_size",
    "threads", "shards", "endpoint", "api_key_env", "server_python", "server_env",
    "startup_timeout_s", "concurrency", "timeout_s", "retries", "backoff_s",
})


class ResumeError(ValueError):
    pass


def _semantic(section) -> dict:
    """A config section without its operational settings (recursively)."""
    data = to_dict(section)
    if not isinstance(data, dict):
        return data
    return {k: _semantic(v) if isinstance(v, dict) else v for k, v in data.items() if k not in OPERATIONAL}


def _prompt_texts(names) -> dict[str, dict]:
    return {name: to_dict(prompts.load(name)) for name in sorted(names)}


def stage_config(config: Config, stage: str, lang: str) -> dict:
    """What, besides its input, determines ``stage``'s output for ``lang``."""
    cfg = config.for_lang(lang)
    if stage == "select":
        return {"select": _semantic(cfg.select)}
    if stage in ("translate", "backtranslate"):
        parts = {"translate": _semantic(cfg.translate)}
        if stage == "translate":  # the R_x -> R_en QE threshold applies in this stage
            parts["qe"] = _semantic(cfg.qe)
        return parts
    if stage == "generate":
        return {"llm": _semantic(cfg.llm), "generate": _semantic(cfg.generate),
                "prompts": _prompt_texts(cfg.generate.tasks)}
    if stage == "judge":
        return {"llm": _semantic(cfg.llm), "judge": _semantic(cfg.judge), "seed": cfg.generate.seed,
                "prompts": _prompt_texts([cfg.judge.prompt])}
    return {"qe": _semantic(cfg.qe)}


# The evol method's settings (``evol:``) that each of its stages depends on: the plan
# (operation, structure, turns) is drawn at select, so its weights belong there.
EVOL_STAGE_KEYS = {
    "select": ("seeds_per_lang", "min_user_turns", "max_user_turns", "task_weights", "operation_weights",
               "structure_weights", "unknown_task", "seed", "max_seed_chars", "length_buckets",
               "dedup_threshold", "dedup_num_perm", "dedup_bands", "dedup_char_ngram"),
    "evolve": ("seed", "max_tokens", "temperature", "top_p", "max_turn_chars", "max_turn_similarity",
               "evolve_prompt"),
    "turns": ("seed", "max_tokens", "temperature", "top_p", "max_turn_chars", "max_turn_similarity",
              "user_turn_prompt", "assistant_turn_prompt"),
    "qc": ("min_turn_lid_confidence", "dedup_threshold", "dedup_num_perm", "dedup_bands", "dedup_char_ngram"),
    "judge": ("seed", "judge_max_tokens", "judge_temperature", "max_turn_chars", "judge_min_score",
              "judge_prompt"),
    "balance": ("task_weights", "operation_weights", "max_mix_deviation", "max_mix_drop", "seed"),
}


def _taxonomy_text() -> str:
    """A digest of every file of the evol taxonomy (``prompts/evol/``): a changed prompt,
    operation or structure redoes the model stages."""
    from prompts import taxonomy

    return digest([[str(p.relative_to(taxonomy.ROOT)), p.read_text(encoding="utf-8")]
                   for p in sorted(taxonomy.ROOT.rglob("*.yaml"))])


def evol_stage_config(config: Config, stage: str, lang: str) -> dict:
    """What, besides its input, determines the evol method's ``stage`` output for ``lang``."""
    cfg = config.for_lang(lang)
    evol = to_dict(cfg.evol)
    parts: dict = {"evol": {k: evol[k] for k in EVOL_STAGE_KEYS[stage]}}
    if stage in ("evolve", "turns", "judge"):
        parts.update(llm=_semantic(cfg.llm), taxonomy=_taxonomy_text())
    if stage == "qc":
        parts["lid"] = _semantic(cfg.select.lid)
    return parts


def input_identity(pattern: str) -> list:
    """The input files as (path, size, modification time): a changed input redoes select."""
    found = FileSystems.match([pattern])[0].metadata_list
    return sorted([m.path, m.size_in_bytes, m.last_updated_in_seconds] for m in found)


def source_identities(sources: tuple[SourceConfig, ...], langs: list[Language]) -> dict[str, list]:
    """lang -> what the select stage of that language reads: each source's settings and files
    (a changed file, path or row filter redoes select). The one CC-100 source of ``--input``
    alone is its files, as before sources existed, so older checkpoints stay valid. Rows of no
    language go to the run's first language, so its identity says it takes them."""
    from transforms.sources.inputs import patterns

    out: dict[str, list] = {}
    only_input = list(sources) == [SourceConfig(CC100_SOURCE, "cc100", sources[0].path)]
    takes_unattributed = any(s.lang_field for s in sources)
    for lang in langs:
        parts = [[to_dict(s), input_identity(patterns(s, [lang]).popitem()[1])] for s in sources]
        if takes_unattributed and lang == langs[0]:
            parts.append("rows of no language")
        out[lang.code] = parts[0][1] if only_input else parts
    return out


def fingerprints(config: Config, inputs: dict[str, str | list], until: str,
                 method: str = "natural") -> dict[str, dict[str, str]]:
    """stage -> lang -> fingerprint, for the stages of ``method`` up to ``until``; ``inputs``:
    per language, its input pattern (one CC-100 source, or evol's seeds) or its
    ``source_identities``."""
    stages = METHODS[method]
    of_stage = evol_stage_config if method == "evol" else stage_config
    out: dict[str, dict[str, str]] = {}
    previous = {lang: digest(input_identity(x) if isinstance(x, str) else x) for lang, x in inputs.items()}
    tag = [] if method == "natural" else [method]  # a method's select differs from the other's
    for stage in stages[: stages.index(until) + 1]:
        previous = out[stage] = {
            lang: digest([previous[lang], *tag, stage, of_stage(config, stage, lang)]) for lang in inputs
        }
    return out


@dataclass(frozen=True)
class Plan:
    """The stages taken from checkpoints (with their markers per language), then those run."""

    reused: dict[str, dict[str, dict]]
    run: tuple[str, ...]


def plan(output: str, prints: dict[str, dict[str, str]], from_stage: str | None = None) -> Plan:
    """Reuse the longest chain of complete checkpoints whose fingerprints match, for every
    language (a stage done for only some languages is redone, and so is one whose checkpoint
    holds transient errors, e.g. ``llm_error``: the re-run retries those records while the
    model-call cache answers the others); ``from_stage`` redoes that
    stage and the ones after it, reusing the ones before it as they are."""
    stages = list(prints)
    limit = stages.index(from_stage) if from_stage else len(stages)
    if from_stage and from_stage not in stages:
        raise ResumeError(f"--from-stage {from_stage} is after --until {stages[-1]}")
    reused: dict[str, dict[str, dict]] = {}
    for stage in stages[:limit]:
        markers = {lang: checkpoint.read_marker(output, stage, lang) for lang in prints[stage]}
        incomplete = [lang for lang, m in markers.items() if m is None]
        stale = [lang for lang, m in markers.items() if m and m["fingerprint"] != prints[stage][lang]]
        failed = {lang: n for lang, m in markers.items()
                  if m and (n := sum(checkpoint.transient_errors(stage, m["stats"]).values()))}
        if from_stage:
            if incomplete:
                raise ResumeError(
                    f"--from-stage {from_stage}: stage {stage} has no complete checkpoint for "
                    f"{', '.join(incomplete)} in {output}/stages; run without --from-stage"
                )
            if stale:
                logger.warning("--from-stage %s: reusing %s although its config or input changed (%s)",
                               from_stage, stage, ", ".join(stale))
            if failed:
                logger.warning("--from-stage %s: reusing %s with its transient errors (%s); run "
                               "without --from-stage to retry them", from_stage, stage, _counts(failed))
        elif incomplete or stale or failed:
            if failed:  # a checkpoint with transient errors is not complete: retry those records
                logger.info("%s: retrying the records that ended in transient errors (%s)",
                            stage, _counts(failed))
            break
        reused[stage] = markers
    return Plan(reused, tuple(s for s in stages if s not in reused))


def _counts(per_lang: dict[str, int]) -> str:
    return ", ".join(f"{lang}: {n}" for lang, n in sorted(per_lang.items()))
