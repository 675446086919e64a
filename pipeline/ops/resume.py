"""Which stages a run can take from its checkpoints, and which it must (re)do.

A stage's fingerprint hashes what determines its output: the fingerprint of the stage before
it, and its own config (model, prompts' text, sampling, thresholds; not the fields marked
``operational``: batch sizes, devices or endpoints, which do not change what comes out). The
select stage starts from the input files' names, sizes and modification times. So a change to a stage's config, or to its input,
redoes that stage and every one after it; anything else is read back from the checkpoint.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems

from pipeline.config import Config, to_dict
from transforms.languages import Language
from transforms.records import checkpoint
from transforms.records.cache import digest
from transforms.sources.config import CC100_SOURCE, SourceConfig

logger = logging.getLogger(__name__)

class ResumeError(ValueError):
    pass


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


def fingerprints(config: Config, inputs: dict[str, str | list], until: str, method=None) -> dict[str, dict[str, str]]:
    """stage -> lang -> fingerprint, for the stages of ``method`` (``pipeline/methods``; the
    natural one by default) up to ``until``, each from its declaration's ``fingerprint``;
    ``inputs``: per language, its input pattern (one CC-100 source, or evol's seeds) or its
    ``source_identities``."""
    if method is None:
        from pipeline.methods import METHODS

        method = METHODS["natural"]
    out: dict[str, dict[str, str]] = {}
    previous = {lang: digest(input_identity(x) if isinstance(x, str) else x) for lang, x in inputs.items()}
    for stage in method.upto(until):
        previous = out[stage.name] = {
            lang: digest([previous[lang], *method.fingerprint_tag, stage.name, stage.fingerprint(config.for_lang(lang))])
            for lang in inputs
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
