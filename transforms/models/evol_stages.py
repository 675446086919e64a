"""The evol method's Beam shells over the pure core of ``transforms/models/evol.py``.

- ``SelectSeeds``: (lang, rows) groups -> planned conversations, seed rejects and counts
  (``seeds.read``, ``seeds.kept``, ``seeds.rejected.{reason}``, ``selected_records``).
- ``EvolLlmStage``: evolve (step 1), turns (step 2) or judge. Its handler
  (``llm_handler.EvolHandler``) is the natural method's ``LlmHandler`` (the same server, client,
  call cache and error handling) with its own ``run_inference``: a batch's conversations advance
  together, one round of concurrent calls per step.
- ``ConversationQc``: per-message language ID, then near-duplicate conversations per language.
- ``BalanceMix``: the excess of tasks over their weight in a language's kept conversations.

Every stage returns a ``StageOutput`` whose rejects are ``evol.conversation_reject`` lines.
"""

from __future__ import annotations

import apache_beam as beam

from transforms.languages import get as get_language
from transforms.models import evol, llm
from transforms.models.config import EvolConfig, LlmConfig
from transforms.records import counts
from transforms.records.cache import digest
from transforms.records.shapes import Tallied, route
from transforms.select import langid
from transforms.select.config import LidConfig
from transforms.settings import semantic
from transforms.stages import Stage, pass_rate, section_hints

SEED_STAGE = "select"  # the evol method's first stage: seeds read and drawn (``SELECT``)


def conversation_reject(state: dict, stage: str, reason: str, detail: dict | None = None) -> dict:
    return evol.conversation_reject(state, stage, reason, detail)


def row_reject(lang: str, source: dict, fields: dict, reason: str, detail: dict | None = None) -> dict:
    """The reject line of a seed row that never became a seed."""
    text = fields.get("instruction")
    line = {"id": evol.stable_id("seed-row", source["file"], str(source["row"])), "lang": lang,
            "stage": SEED_STAGE, "reason": reason, "text": text if isinstance(text, str) else "",
            "source": source}
    if detail:
        line["detail"] = detail
    return line


class SelectSeeds(Tallied):
    """(lang, rows from ``transforms.sources.seeds.read_seeds``) -> planned conversations
    (main), reject lines (``rejects``) and counts (``stats``): every row read is a kept seed
    or a counted reject. ``cfgs``: each language's ``EvolConfig`` (its overrides applied)."""

    stage = SEED_STAGE

    def __init__(self, cfgs: dict[str, EvolConfig]):
        self.cfgs = cfgs

    def process(self, element):
        lang, items = element
        cfg = self.cfgs[lang]
        seeds = []
        for item in items:
            self.tally[lang, counts.SEEDS_READ] += 1
            reason, detail = item.get("reason"), item.get("detail", {})
            if not reason:
                seed, reason, detail = evol.seed_from_row(item["fields"], cfg, item["source"])
            if reason:
                self.tally[lang, counts.seeds_rejected(reason)] += 1
                yield beam.pvalue.TaggedOutput("rejects", row_reject(lang, item["source"], item["fields"],
                                                                     reason, detail))
            else:
                seeds.append(seed)
        kept, dropped = evol.select_seeds(seeds, cfg)
        for seed, reason, detail in dropped:
            self.tally[lang, counts.seeds_rejected(reason)] += 1
            yield beam.pvalue.TaggedOutput("rejects", evol.seed_reject(seed, reason, detail))
        self.tally[lang, counts.SEEDS_KEPT] += len(kept)
        self.tally[lang, counts.SELECTED_RECORDS] += len(kept)
        for seed in kept:
            yield evol.plan_conversation(seed, cfg)
        self.feed_progress()


def judge_threshold(result, cfgs: dict[str, EvolConfig]):
    """``judge_min_score`` on the stored score (the score stays on the record either way)."""
    state, reason, *detail = result
    if reason:
        return result
    low = evol.judge_verdict(state.get("scores", {}).get("judge"), cfgs[state["lang"]])
    return (state, low, {"score": state["scores"]["judge"]}) if low else (state, None)


class EvolLlmStage(beam.PTransform):
    """evolve, turns or judge (``stage``, taking the LLM ``steps`` of ``evol.next_step``):
    conversations -> StageOutput; ``judged``: apply ``judge_min_score`` to the stored score."""

    def __init__(self, stage: str, steps: tuple[str, ...], llm_cfg: LlmConfig, cfgs: dict[str, EvolConfig],
                 cache_dir: str | None = None, judged: bool = False):
        super().__init__()
        self.stage, self.steps, self.llm_cfg, self.cfgs = stage, steps, llm_cfg, cfgs
        self.cache_dir, self.judged = cache_dir, judged

    def expand(self, states):
        from apache_beam.ml.inference.base import RunInference

        from transforms.models.llm_handler import EvolHandler

        handler = EvolHandler(self.stage, self.steps, self.llm_cfg, self.cfgs, self.cache_dir)
        results = states | "Infer" >> RunInference(handler)
        if self.judged:
            results = results | "Threshold" >> beam.Map(judge_threshold, self.cfgs)
        return route(results, self.stage, conversation_reject, ("judge",) if self.judged else ())


class TurnLid(beam.DoFn):
    """A conversation -> (it with ``scores.lid``, reason or None, detail): every message's
    language by fastText; one in another language (or ours under the threshold) rejects it.
    A language the model cannot identify is not checked (and gets no ``scores.lid``)."""

    def __init__(self, lid: dict[str, LidConfig], cfgs: dict[str, EvolConfig]):
        self.lid, self.cfgs = lid, cfgs

    def setup(self):
        self.models = {code: langid.LanguageIdentifier(cfg) for code, cfg in self.lid.items()}

    def process(self, state: dict):
        lang, cfg = state["lang"], self.lid[state["lang"]]
        expected = langid.expected_label(get_language(lang), cfg.labels)
        if expected is None:
            yield state, None, {}
            return
        predictions = [self.models[lang].predict(m["content"]) for m in state["messages"]]
        scored = {**state, "scores": {**state.get("scores", {}), "lid": evol.turn_lid(predictions, expected)}}
        models = {**scored.get("provenance", {}).get("models", {}), "lid": cfg.model_path or "lid.176.ftz"}
        scored["provenance"] = {**scored.get("provenance", {}), "models": models}
        reason, detail = evol.lid_verdict(predictions, expected, self.cfgs[lang].min_turn_lid_confidence)
        yield scored, reason, detail


def _dedup(element, cfgs: dict[str, EvolConfig]):
    """(lang, conversations) -> each (conversation, reason or None, detail)."""
    lang, states = element
    states = list(states)
    dropped = evol.conversation_duplicates(states, cfgs[lang])
    for state in states:
        if state["id"] in dropped:
            reason, kept = dropped[state["id"]]
            yield state, reason, {"duplicate_of": kept}
        else:
            yield state, None


class ConversationQc(beam.PTransform):
    """qc: per-message language ID, then exact and near-duplicate conversations (per language,
    among those that passed) -> StageOutput."""

    def __init__(self, lid: dict[str, LidConfig], cfgs: dict[str, EvolConfig]):
        super().__init__()
        self.lid, self.cfgs = lid, cfgs

    def expand(self, states):
        checked = states | "Lid" >> beam.ParDo(TurnLid(self.lid, self.cfgs))
        failed = checked | "LidFailed" >> beam.Filter(lambda r: r[1] is not None)
        passed = (
            checked
            | "LidPassed" >> beam.Filter(lambda r: r[1] is None)
            | "ByLang" >> beam.Map(lambda r: (r[0]["lang"], r[0]))
            | "Group" >> beam.GroupByKey()
            | "Dedup" >> beam.FlatMap(_dedup, self.cfgs)
        )
        return route((failed, passed) | "All" >> beam.Flatten(), QC.name, conversation_reject)


def _balance(element, cfgs: dict[str, EvolConfig]):
    """(lang, conversations) -> each (conversation, reason or None, detail)."""
    lang, states = element
    states = sorted(states, key=lambda s: s["id"])
    dropped = evol.mix_over_weight(states, cfgs[lang])
    for state in states:
        if state["id"] in dropped:
            yield state, evol.MIX_OVER_WEIGHT, dropped[state["id"]]
        else:
            yield state, None


class BalanceMix(beam.PTransform):
    """balance: per language, the conversations of tasks over their weight's share (by more than
    ``max_mix_deviation``) beyond it -> StageOutput (``evol.mix_over_weight``)."""

    def __init__(self, cfgs: dict[str, EvolConfig]):
        super().__init__()
        self.cfgs = cfgs

    def expand(self, states):
        balanced = (
            states
            | "ByLang" >> beam.Map(lambda s: (s["lang"], s))
            | "Group" >> beam.GroupByKey()
            | "Balance" >> beam.FlatMap(_balance, self.cfgs)
        )
        return route(balanced, BALANCE.name, conversation_reject)


def final_record(state: dict, cfgs: dict[str, EvolConfig], preset: str) -> dict:
    """A conversation as the CONTRACT record, with the fields its stages have produced (no
    ``messages`` before step 1, ``evol.turns`` then the planned number of user turns)."""
    models = state.get("provenance", {}).get("models", {})
    record = evol.conversation_record(state, cfgs[state["lang"]], models, preset,
                                      state.get("scores", {}).get("lid"))
    if not record["messages"]:
        del record["messages"]
        record["evol"]["turns"] = state["evol"]["turns"]
    return record



# ---------------------------------------------------------------- the stages, declared


def _fingerprint(keys: tuple[str, ...], llm: bool = False, lid: bool = False):
    """A stage's fingerprint: the ``evol`` settings it reads (``keys``); an LLM stage adds the
    LLM's settings and the whole taxonomy (a changed prompt, operation or structure redoes it)."""
    def fingerprint(cfg) -> dict:
        settings = semantic(cfg.evol)
        parts: dict = {"evol": {k: settings[k] for k in keys}}
        if llm:
            parts.update(llm=semantic(cfg.llm), taxonomy=_taxonomy_text())
        if lid:
            parts["lid"] = semantic(cfg.select.lid)
        return parts
    return fingerprint


def _taxonomy_text() -> str:
    """A digest of every file of the evol taxonomy (``prompts/evol/``)."""
    from prompts import taxonomy

    return digest([[str(p.relative_to(taxonomy.ROOT)), p.read_text(encoding="utf-8")]
                   for p in sorted(taxonomy.ROOT.rglob("*.yaml"))])


def _llm_stage(name: str, steps: tuple[str, ...], keys: tuple[str, ...], prompts, pass_rate, judged=False):
    """An LLM stage of the method: evolve, turns or judge."""
    return Stage(
        name,
        fingerprint=_fingerprint(keys, llm=True),
        report=lambda c: (c.get("llm", {}).get("model", "?"), prompts(c.get("evol", {}))),
        transform=lambda ctx: EvolLlmStage(name, steps, ctx.config.llm, ctx.per_lang(lambda cfg: cfg.evol), ctx.cache,
                                           judged),
        hints=lambda config: section_hints(config.llm),
        llm=True,
        pass_rate=pass_rate,
        steps=steps,
        reasons=(llm.LLM_ERROR, *evol.CONVERSATION_REASONS),
    )


# the plan (operation, structure, turns) is drawn at select, so its weights belong there
SELECT = Stage(
    SEED_STAGE,
    fingerprint=_fingerprint(("seeds_per_lang", "min_user_turns", "max_user_turns", "task_weights",
                              "operation_weights", "structure_weights", "unknown_task", "seed", "max_seed_chars",
                              "length_buckets", "dedup_threshold", "dedup_num_perm", "dedup_bands",
                              "dedup_char_ngram")),
    report=lambda c: ("seed dedup: MinHash", ""),
    reasons=evol.SEED_REASONS,
)
# every one of a conversation's calls must pass: the dry run raises pass_rate to their number
EVOLVE = _llm_stage("evolve", ("evolve",), ("seed", "max_tokens", "temperature", "top_p", "max_turn_chars",
                                             "max_turn_similarity", "evolve_prompt"),
                    lambda e: f"{e.get('evolve_prompt')} + the task's operation",
                    lambda cfg: cfg.cost.evol_call_pass_rate)
TURNS = _llm_stage("turns", ("user", "assistant"), ("seed", "max_tokens", "temperature", "top_p", "max_turn_chars",
                                                    "max_turn_similarity", "user_turn_prompt", "assistant_turn_prompt"),
                   lambda e: f"{e.get('user_turn_prompt')}, {e.get('assistant_turn_prompt')} + the dialogue structure",
                   lambda cfg: cfg.cost.evol_call_pass_rate)
QC = Stage(
    "qc",
    fingerprint=_fingerprint(("min_turn_lid_confidence", "dedup_threshold", "dedup_num_perm", "dedup_bands",
                              "dedup_char_ngram"), lid=True),
    report=lambda c: (langid.report_label(c), ""),
    transform=lambda ctx: ConversationQc(ctx.per_lang(lambda cfg: cfg.select.lid), ctx.per_lang(lambda cfg: cfg.evol)),
    pass_rate=lambda cfg: pass_rate(cfg.evol.min_turn_lid_confidence, cfg.cost.evol_qc_pass_rate),
    reasons=(evol.TURN_LID_MISMATCH, evol.TURN_LID_LOW_CONFIDENCE, evol.CONVERSATION_EXACT_DUPLICATE,
             evol.CONVERSATION_NEAR_DUPLICATE),
)
JUDGE = _llm_stage("judge", ("judge",), ("seed", "judge_max_tokens", "judge_temperature", "max_turn_chars",
                                         "judge_min_score", "judge_prompt"),
                   lambda e: e.get("judge_prompt", "?"),
                   lambda cfg: pass_rate(cfg.evol.judge_min_score, cfg.cost.judge_pass_rate), judged=True)
# drops only a task mix skewed by the checks before it: the dry run assumes none
BALANCE = Stage(
    "balance",
    fingerprint=_fingerprint(("task_weights", "operation_weights", "max_mix_deviation", "max_mix_drop", "seed")),
    report=lambda c: (f"task mix: max deviation {c.get('evol', {}).get('max_mix_deviation')}", ""),
    transform=lambda ctx: BalanceMix(ctx.per_lang(lambda cfg: cfg.evol)),
    reasons=(evol.MIX_OVER_WEIGHT,),
)
