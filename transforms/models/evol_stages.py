"""The evol method's Beam shells over the pure core of ``transforms/models/evol.py``.

- ``SelectSeeds``: (lang, rows) groups -> planned conversations, seed rejects and counts
  (``seeds.read``, ``seeds.kept``, ``seeds.rejected.{reason}``, ``selected_records``).
- ``EvolLlmStage``: evolve (step 1), turns (step 2) or judge. Its handler is the natural
  method's ``LlmHandler`` (the same server, client, call cache and error handling) with its
  own ``run_inference``: a batch's conversations advance together, one round of concurrent
  calls per step, so a conversation's next turn is asked once the one before it is in.
- ``ConversationQc``: per-message language ID, then near-duplicate conversations per language.
- ``BalanceMix``: the excess of tasks over their weight in a language's kept conversations.

Every stage returns a ``StageOutput`` whose rejects are ``evol.conversation_reject`` lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import apache_beam as beam
from apache_beam.ml.inference.base import RunInference

from pipeline.config import EvolConfig, LidConfig, LlmConfig
from pipeline.languages import get as get_language
from transforms.models import evol, llm
from transforms.models.generate import LlmHandler
from transforms.records.shapes import Tallied, route, with_provenance
from transforms.select import langid

# the steps (``evol.next_step``) each LLM stage takes
STAGE_STEPS = {"evolve": ("evolve",), "turns": ("user", "assistant"), "judge": ("judge",)}


def conversation_reject(state: dict, stage: str, reason: str, detail: dict | None = None) -> dict:
    return evol.conversation_reject(state, stage, reason, detail)


def row_reject(lang: str, source: dict, fields: dict, reason: str, detail: dict | None = None) -> dict:
    """The reject line of a seed row that never became a seed."""
    text = fields.get("instruction")
    line = {"id": evol.stable_id("seed-row", source["file"], str(source["row"])), "lang": lang,
            "stage": "select", "reason": reason, "text": text if isinstance(text, str) else "",
            "source": source}
    if detail:
        line["detail"] = detail
    return line


class SelectSeeds(Tallied):
    """(lang, rows from ``transforms.sources.seeds.read_seeds``) -> planned conversations
    (main), reject lines (``rejects``) and counts (``stats``): every row read is a kept seed
    or a counted reject. ``cfgs``: each language's ``EvolConfig`` (its overrides applied)."""

    stage = "select"

    def __init__(self, cfgs: dict[str, EvolConfig]):
        self.cfgs = cfgs

    def process(self, element):
        lang, items = element
        cfg = self.cfgs[lang]
        seeds = []
        for item in items:
            self.tally[lang, "seeds.read"] += 1
            reason, detail = item.get("reason"), {}
            if not reason:
                seed, reason, detail = evol.seed_from_row(item["fields"], cfg, item["source"])
            if reason:
                self.tally[lang, f"seeds.rejected.{reason}"] += 1
                yield beam.pvalue.TaggedOutput("rejects", row_reject(lang, item["source"], item["fields"],
                                                                     reason, detail))
            else:
                seeds.append(seed)
        kept, dropped = evol.select_seeds(seeds, cfg)
        for seed, reason, detail in dropped:
            self.tally[lang, f"seeds.rejected.{reason}"] += 1
            yield beam.pvalue.TaggedOutput("rejects", evol.seed_reject(seed, reason, detail))
        self.tally[lang, "seeds.kept"] += len(kept)
        self.tally[lang, "selected_records"] += len(kept)
        for seed in kept:
            yield evol.plan_conversation(seed, cfg)
        self.feed_progress()


class EvolHandler(LlmHandler):
    """Conversations -> (conversation with the stage's steps done, None) or (conversation,
    reason, detail): the first rejected answer drops the conversation."""

    def __init__(self, stage: str, llm_cfg: LlmConfig, cfgs: dict[str, EvolConfig], cache_dir: str | None = None):
        super().__init__(stage, llm_cfg, None, None, cache_dir)
        self.cfgs, self.steps = cfgs, STAGE_STEPS[stage]

    def run_inference(self, batch: Sequence[dict], model: llm.LlmClient, inference_args=None) -> Iterable:
        states = list(batch)
        outcome: list[tuple | None] = [None] * len(states)
        while True:
            pending = []
            for i, state in enumerate(states):
                if outcome[i] is None:
                    step, request = evol.next_request(state, self.cfgs[state["lang"]])
                    if step in self.steps:
                        pending.append((i, step, request))
            if not pending:
                break
            answers = self.answers(model, [request for _, _, request in pending])
            for (i, step, _), answer in zip(pending, answers, strict=True):
                if answer["error"]:
                    outcome[i] = (states[i], llm.LLM_ERROR, {"error": answer["error"], "attempts": answer["attempts"],
                                                             "step": step})
                    continue
                state, reason, detail = evol.apply_answer(states[i], step, answer["text"],
                                                          answer.get("finish_reason"), self.cfgs[states[i]["lang"]])
                if reason:
                    outcome[i] = (states[i], reason, detail)
                else:
                    states[i] = state
        return [out or (with_provenance(state, self.kind, self.llm_cfg.model), None)
                for state, out in zip(states, outcome, strict=True)]


def judge_threshold(result, cfgs: dict[str, EvolConfig]):
    """``judge_min_score`` on the stored score (the score stays on the record either way)."""
    state, reason, *detail = result
    if reason:
        return result
    low = evol.judge_verdict(state.get("scores", {}).get("judge"), cfgs[state["lang"]])
    return (state, low, {"score": state["scores"]["judge"]}) if low else (state, None)


class EvolLlmStage(beam.PTransform):
    """evolve, turns or judge: conversations -> StageOutput."""

    def __init__(self, stage: str, llm_cfg: LlmConfig, cfgs: dict[str, EvolConfig], cache_dir: str | None = None):
        super().__init__()
        self.stage, self.cfgs = stage, cfgs
        self.handler = EvolHandler(stage, llm_cfg, cfgs, cache_dir)

    def expand(self, states):
        results = states | "Infer" >> RunInference(self.handler)
        if self.stage == "judge":
            results = results | "Threshold" >> beam.Map(judge_threshold, self.cfgs)
        return route(results, self.stage, conversation_reject)


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
        return route((failed, passed) | "All" >> beam.Flatten(), "qc", conversation_reject)


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
        return route(balanced, "balance", conversation_reject)


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

