"""``--dry-run --method evol``: what an evol run would send to the LLM, and cost, with no model.

Seed selection runs for real (the pure functions the pipeline's select wraps: every seed row
read, deduplicated and drawn), so the conversations and their planned user turns are exact.
Each conversation's requests are then built by the pipeline's own request builders
(``evol.next_request``) on a stand-in conversation whose messages have ``cost.evol_message_chars``
characters: the prompts' real text, the turns from config. Tokens: the system message (the
rubric, in English; the same for every request of a task and operation, so the server's prefix
cache computes it once) at ``english_chars_per_token``, the data at ``chars_per_token``. Records
flow through the stages at the ``cost`` pass rates.
"""

from __future__ import annotations

from collections import defaultdict

from pipeline.config import Config
from pipeline.methods.evol import EVOL
from pipeline.ops.dryrun import Selection, StageEstimate, document, engines, table
from transforms.languages import Language
from transforms.models import evol
from transforms.records.write import write_json
from transforms.sources import seeds
from transforms.sources.cc100 import input_pattern


def select_seeds(template: str, langs: list[Language], config: Config) -> dict[str, tuple[Selection, list[dict]]]:
    """lang -> (what seed selection keeps, the planned conversations), read from every seed file."""
    patterns = {lang.code: input_pattern(template, lang) for lang in langs}
    rows: dict[str, list[dict]] = defaultdict(list)
    for element in seeds.seed_files(template, patterns):
        for lang, item in seeds.read_seeds(element, list(patterns)):
            rows[lang].append(item)
    out = {}
    for lang in langs:
        cfg = config.for_lang(lang.code).evol
        candidates = []
        for item in rows[lang.code]:
            if not item.get("reason"):
                seed, reason, _ = evol.seed_from_row(item["fields"], cfg, item["source"])
                if seed:
                    candidates.append(seed)
        kept, _ = evol.select_seeds(candidates, cfg)
        chars = sum(len(s["instruction"]) + len(s["response"]) for s in kept)
        note = f"seed selection run on all {len(rows[lang.code]):,} seed rows of the run's files"
        out[lang.code] = (Selection(len(rows[lang.code]), len(kept), chars, note),
                          [evol.plan_conversation(s, cfg) for s in kept])
    return out


def conversation_calls(state: dict, config: Config) -> dict[str, list[tuple[float, float, float]]]:
    """stage -> (tokens sent, tokens computed, tokens generated) of each call one conversation
    makes, built by the pipeline's request builders on stand-in messages."""
    cost, cfg = config.cost, config.evol
    message = "x" * int(min(cost.evol_message_chars, cfg.max_turn_chars))
    stage_of = {step: stage.name for stage in EVOL.stages for step in stage.steps}
    calls: dict[str, list] = defaultdict(list)
    while True:
        step, request = evol.next_request(state, cfg)
        if request is None:
            return calls
        system = len(request.messages[0]["content"]) / cost.english_chars_per_token
        data = len(request.messages[1]["content"]) / cost.chars_per_token
        generated = (cost.judge_output_tokens if step == "judge"
                     else len(message) * (2 if step == "evolve" else 1) / cost.chars_per_token)
        calls[stage_of[step]].append((system + data, data, generated))
        if step == "evolve":
            state = {**state, "messages": [{"role": "user", "content": message},
                                           {"role": "assistant", "content": message}]}
        elif step == "judge":
            state = {**state, "scores": {"judge": 3}}
        else:
            state = {**state, "messages": [*state["messages"], {"role": step, "content": message}]}


def estimate(selection: Selection, planned: list[dict], config: Config, engine, until: str) -> list[StageEstimate]:
    """Per stage up to ``until``: conversations in and out, tokens, GPU-hours and dollars. A
    stage keeps its declaration's ``pass_rate`` of the conversations; an LLM stage making several
    calls a conversation keeps it only when every call passes (``pass_rate`` a call)."""
    per_stage: dict[str, list[tuple[float, float, float, int]]] = defaultdict(list)  # + calls
    for state in planned:
        for stage, calls in conversation_calls(state, config).items():
            per_stage[stage].append((sum(c[0] for c in calls), sum(c[1] for c in calls),
                                     sum(c[2] for c in calls), len(calls)))
    select, *later = EVOL.upto(until)
    out = [StageEstimate(select.name, selection.paragraphs, selection.records)]
    share = 1.0  # of the planned conversations still in
    n = len(planned)
    for stage in later:
        work = per_stage.get(stage.name, [])
        sent = share * sum(w[0] for w in work)
        computed = share * sum(w[1] for w in work)
        generated = share * sum(w[2] for w in work)
        hours, usd = engine["llm"].cost(computed, generated)
        kept = stage.pass_rate(config)
        if any(w[3] > 1 for w in work):
            kept = sum(kept ** w[3] for w in work) / len(work)
        out.append(StageEstimate(stage.name, share * n, share * n * kept, sent, generated, hours, usd))
        share *= kept
    return out


def run(args, langs: list[Language], config: Config) -> int:
    """``--dry-run --method evol``: select seeds, estimate the LLM stages up to ``--until``,
    print the table and write ``OUT/dryrun.json``."""
    engine = engines(config.cost)
    results, costs = {}, {}
    for code, (selection, planned) in select_seeds(args.input, langs, config).items():
        results[code] = (selection, estimate(selection, planned, config.for_lang(code), engine, args.until))
        costs[code] = config.for_lang(code).cost
    text = table(config.preset, results, engine, config.cost)
    text = text.replace("select: records in = paragraphs read, out = fragments; total: selected fragments "
                        "in, final records out",
                        "select: records in = seed rows read, out = seeds kept (conversations); total: "
                        "conversations in, final conversations out; per conversation: 1 evolve call, "
                        "2 per later user turn, 1 judge call")
    print(text.replace("selected fragments", "seeds"))
    path = f"{args.output}/dryrun.json"
    write_json(path, {**document(config.preset, results, engine, costs, config.cost), "method": "evol"})
    print(f"\nwritten: {path}")
    return 0


