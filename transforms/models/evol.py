"""The evol method's pure core (M2Lingual style): seed examples -> multi-turn conversations.

1. **Seeds.** ``seed_from_row`` turns an input row (``instruction``, ``response``, ``lang``,
   optional ``task`` and ``id``) into a seed or a reject reason; ``select_seeds`` removes exact
   and MinHash near-duplicate seeds of a language and draws ``seeds_per_lang`` of the rest,
   spreading tasks (by ``task_weights``) and lengths.
2. **Plan.** ``plan_conversation`` draws, reproducibly from the seed's id and ``EvolConfig.seed``,
   the evolution operation (step 1), the dialogue structure and the number of user turns
   (step 2).
3. **Requests and answers.** ``next_request`` gives the one LLM call a conversation needs next
   (evolve, then user and assistant turns alternately, then the judge) as an
   ``llm.LlmRequest``: the rubric in the system message, the data in the user message between
   delimiters it cannot close (``neutralise``), a JSON schema with bounded strings.
   ``apply_answer`` parses the answer into the conversation or gives a reject reason.
4. **Quality control and records.** ``turn_lid`` and ``lid_verdict`` (every turn in the target
   language), ``judge_verdict`` (the threshold applies here, not in the parser),
   ``conversation_duplicates``, ``mix_over_weight`` (the kept task mix near its weights); ``conversation_record`` gives the CONTRACT record and
   ``transforms.records.shapes.with_messages`` gives the natural method its ``messages`` field.

No I/O and no Beam here: the shells call these functions.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

from prompts import taxonomy
from transforms import languages
from transforms.models.config import EvolConfig
from transforms.models.config import weight as _weight
from transforms.models.llm import LlmRequest
from transforms.records import counts
from transforms.select.dedup.components import find, union
from transforms.select.dedup.entries import band_keys
from transforms.select.minhash import MinHasher, normalize

# Reasons (stable names, each counted and written with the reject)
SEED_MISSING_FIELD = "seed_missing_field"  # no instruction, response or lang
SEED_LANG_UNKNOWN = "seed_lang_unknown"  # lang is not one of our language codes
SEED_TOO_LONG = "seed_too_long"  # instruction + response over max_seed_chars
SEED_TASK_UNKNOWN = "seed_task_unknown"  # task label unknown and unknown_task is None
SEED_DUPLICATE_ID = "seed_duplicate_id"  # a second seed with the id of another
SEED_EXACT_DUPLICATE = "seed_exact_duplicate"
SEED_NEAR_DUPLICATE = "seed_near_duplicate"
SEED_NOT_SAMPLED = "seed_not_sampled"  # over its task's share of seeds_per_lang
EVOL_UNPARSEABLE = "evol_unparseable"  # an answer that is not the JSON object asked for
EVOL_UNCHANGED = "evol_unchanged"  # step 1 returned the seed instruction itself
TURN_EMPTY = "turn_empty"
TURN_TRUNCATED = "turn_truncated"  # the model hit max_tokens (finish_reason "length")
TURN_TOO_LONG = "turn_too_long"  # over max_turn_chars (a server that ignores the schema)
TURN_REPEATED = "turn_repeated"  # the same as, or nearly, an earlier message
TURN_LID_MISMATCH = "turn_lid_mismatch"  # a message whose top language is another one
TURN_LID_LOW_CONFIDENCE = "turn_lid_low_confidence"
JUDGE_UNPARSEABLE = "judge_unparseable"
JUDGE_LOW = "judge_low"
CONVERSATION_EXACT_DUPLICATE = "conversation_exact_duplicate"
CONVERSATION_NEAR_DUPLICATE = "conversation_near_duplicate"
MIX_OVER_WEIGHT = "mix_over_weight"  # its task's share of the kept is over its weight (balance)

SEED_REASONS = (SEED_MISSING_FIELD, SEED_LANG_UNKNOWN, SEED_TOO_LONG, SEED_TASK_UNKNOWN,
                SEED_DUPLICATE_ID, SEED_EXACT_DUPLICATE, SEED_NEAR_DUPLICATE, SEED_NOT_SAMPLED)
CONVERSATION_REASONS = (EVOL_UNPARSEABLE, EVOL_UNCHANGED, TURN_EMPTY, TURN_TRUNCATED, TURN_TOO_LONG,
                        TURN_REPEATED, TURN_LID_MISMATCH, TURN_LID_LOW_CONFIDENCE, JUDGE_UNPARSEABLE,
                        JUDGE_LOW, CONVERSATION_EXACT_DUPLICATE, CONVERSATION_NEAR_DUPLICATE, MIX_OVER_WEIGHT)


# ---------------------------------------------------------------- neutralising data

# A tag-like "<" (closing tags, chat special tokens <|...|>, <s>, <<SYS>>, <start_of_turn>),
# "|>" ending a special token, a bracket token ([INST], [/INST], [SYSTEM_PROMPT]), a role
# marker at a line start ("User:", "### Assistant:"), and control characters.
_TAG_OPEN = re.compile(r"<(?=[/!?<|｜A-Za-z])")
_TAG_CLOSE = re.compile(r"(?<=[|｜])>")
_BRACKET_TOKEN = re.compile(r"\[(?=/?[A-Z][A-Z_]+\])")
_ROLE = re.compile(r"(?im)^([ \t]*(?:(?:#{1,6}[ \t]*)?(?:system|user|assistant|human|gpt|bot)|"
                   r"#{1,6}[ \t]*(?:instruction|input|response))[ \t]*):")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def neutralise(text: str) -> str:
    """``text`` made safe to place between prompt delimiters: tag-like ``<`` becomes ``&lt;``
    (so ``</seed>``, ``</turn>``, ``<|eot_id|>``, ``<s>`` cannot close a section or read as a
    special token), ``|>`` becomes ``|&gt;``, ``[INST]``-style tokens start with ``&#91;``,
    a role marker's colon at a line start becomes ``&#58;``, control characters become U+FFFD,
    and ``\\r\\n`` becomes ``\\n``. The prompts tell the model what these stand for. Only the
    prompt sees this; records keep the text as written."""
    text = unicodedata.normalize("NFC", str(text)).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("\ufffd", text)
    text = _TAG_OPEN.sub("&lt;", text)
    text = _TAG_CLOSE.sub("&gt;", text)
    text = _BRACKET_TOKEN.sub("&#91;", text)
    return _ROLE.sub(r"\1&#58;", text)


def render_conversation(messages: Sequence[dict]) -> str:
    """The conversation so far as numbered ``<turn>`` sections, each message neutralised."""
    return "\n".join(f'<turn n="{i}" role="{m["role"]}">\n{neutralise(m["content"]).strip()}\n</turn>'
                     for i, m in enumerate(messages, 1))


# ---------------------------------------------------------------- seeds


def stable_id(*parts: str) -> str:
    return hashlib.sha1("\t".join(parts).encode()).hexdigest()[:20]


def seed_from_row(row: dict, cfg: EvolConfig, source: dict | None = None) -> tuple[dict | None, str | None, dict]:
    """(seed, None, {}) or (None, reason, detail). A seed is ``{id, lang, instruction,
    response, task, task_label, source}``; its ``task`` is ours (``task_label`` is the row's),
    an unknown or missing label becomes ``cfg.unknown_task`` (general chat by default)."""
    values = {}
    for key in ("instruction", "response", "lang"):
        value = row.get(key)
        value = value.strip() if isinstance(value, str) else ""
        if not value:
            return None, SEED_MISSING_FIELD, {"field": key}
        values[key] = value
    lang = values["lang"]
    if lang not in languages.LANGUAGES:
        return None, SEED_LANG_UNKNOWN, {"lang": lang[:40]}
    if len(values["instruction"]) + len(values["response"]) > cfg.max_seed_chars:
        return None, SEED_TOO_LONG, {"chars": len(values["instruction"]) + len(values["response"])}
    label = row.get("task")
    label = str(label).strip() if label is not None and str(label).strip() else None
    task = taxonomy.task_of(label) or cfg.unknown_task
    if task is None:
        return None, SEED_TASK_UNKNOWN, {"task": (label or "")[:80]}
    seed_id = str(row["id"]) if row.get("id") not in (None, "") else stable_id(
        "seed", lang, values["instruction"], values["response"])
    return {"id": seed_id, "lang": lang, "instruction": values["instruction"], "response": values["response"],
            "task": task, "task_label": label, "source": dict(source or {})}, None, {}


def _seed_text(seed: dict) -> str:
    return seed["instruction"] + "\n" + seed["response"]


def duplicates(items: Sequence[tuple[str, str]], cfg: EvolConfig) -> dict[str, tuple[str, str]]:
    """{dropped id: ("exact" | "near", kept id)} over (id, text) pairs: exact copies of the
    normalised text, then MinHash near duplicates (LSH candidates with an estimated Jaccard of at
    least ``dedup_threshold``), grouped into connected components that keep their smallest id
    (select's banding and union-find: ``transforms/select/dedup``)."""
    items = sorted(items)
    parent: dict[str, str] = {}
    kind: dict[str, str] = {}
    first_of: dict[str, str] = {}
    distinct = []
    for ident, text in items:
        key = normalize(text)
        if key in first_of:
            union(parent, first_of[key], ident)
            kind[ident] = "exact"
        else:
            first_of[key] = ident
            distinct.append((ident, text))
    if len(distinct) > 1:
        hasher = MinHasher(cfg.dedup_num_perm, cfg.dedup_char_ngram, words=False, seed=cfg.seed + 1)
        sigs = hasher.signatures([t for _, t in distinct])
        keys = band_keys(sigs, cfg.dedup_bands, cfg.dedup_num_perm // cfg.dedup_bands).tolist()
        buckets: dict[bytes, list[int]] = defaultdict(list)
        for i, text_keys in enumerate(keys):
            for key in text_keys:
                buckets[key].append(i)
        checked = set()
        for members in buckets.values():
            # a huge bucket is one template: compare with its first member only
            pairs = ([(members[0], m) for m in members[1:]] if len(members) > 64 else
                     [(a, b) for k, a in enumerate(members) for b in members[k + 1:]])
            for a, b in pairs:
                if (a, b) in checked:
                    continue
                checked.add((a, b))
                if float(np.mean(sigs[a] == sigs[b])) >= cfg.dedup_threshold:
                    union(parent, distinct[a][0], distinct[b][0])
    out = {}
    for ident, _ in items:
        root = find(parent, ident)
        if root != ident:
            out[ident] = (kind.get(ident, "near"), root)
    return out


def quotas(available: dict[str, int], weights: dict[str, float], n: int) -> dict[str, int]:
    """How many of ``n`` to take from each group: shares by weight (1.0 where absent), a group
    never over what it has, its unused share spread over the others by weight (largest
    remainders, ties by name)."""
    quota = {k: 0 for k in available}
    active = {k for k, a in available.items() if a > 0 and _weight(weights, k) > 0}
    remaining = min(n, sum(available[k] for k in active))
    while remaining > 0 and active:
        total = sum(_weight(weights, k) for k in active)
        shares = {k: remaining * _weight(weights, k) / total for k in active}
        base = {k: int(shares[k]) for k in active}
        for k in sorted(active, key=lambda k: (base[k] - shares[k], k))[:remaining - sum(base.values())]:
            base[k] += 1
        for k in sorted(active):
            give = min(base[k], available[k] - quota[k])
            quota[k] += give
            remaining -= give
        active = {k for k in active if quota[k] < available[k]}
    return quota


def _order_key(salt: int, kind: str, ident: str) -> bytes:
    return hashlib.sha1(f"{salt}/{kind}/{ident}".encode()).digest()


def length_bucket(lengths: Sequence[int], n_buckets: int) -> list[int]:
    """Each length's quantile stratum (0..n_buckets-1) within ``lengths``."""
    if not lengths or n_buckets <= 1:
        return [0] * len(lengths)
    edges = np.quantile(np.asarray(lengths, dtype=float), np.linspace(0, 1, n_buckets + 1)[1:-1])
    return [int(np.searchsorted(edges, x, side="right")) for x in lengths]


def select_seeds(seeds: Iterable[dict], cfg: EvolConfig) -> tuple[list[dict], list[tuple[dict, str, dict]]]:
    """One language's seeds -> (kept, [(seed, reason, detail)]): every seed ends in exactly one.
    Duplicates go first (a repeated id, then copies: the smallest id of a group stays); then
    ``seeds_per_lang`` are drawn: each task gets its weight's share (``quotas``), and within a
    task seeds are taken round-robin over length strata, in an order drawn from ``cfg.seed`` and
    the seed id."""
    dropped: list[tuple[dict, str, dict]] = []
    by_id: dict[str, dict] = {}
    for s in sorted(seeds, key=lambda s: (s["id"], s["instruction"], s["response"])):
        if s["id"] in by_id:
            dropped.append((s, SEED_DUPLICATE_ID, {"duplicate_of": s["id"]}))
        else:
            by_id[s["id"]] = s
    seeds = list(by_id.values())
    dupes = duplicates([(s["id"], _seed_text(s)) for s in seeds], cfg)
    unique = []
    for s in seeds:
        if s["id"] in dupes:
            kind, kept = dupes[s["id"]]
            reason = SEED_EXACT_DUPLICATE if kind == "exact" else SEED_NEAR_DUPLICATE
            dropped.append((s, reason, {"duplicate_of": kept}))
        else:
            unique.append(s)
    n = len(unique) if cfg.seeds_per_lang is None else cfg.seeds_per_lang
    by_task: dict[str, list[dict]] = defaultdict(list)
    for s in unique:
        by_task[s["task"]].append(s)
    quota = quotas({t: len(v) for t, v in by_task.items()}, cfg.task_weights, n)
    strata = dict(zip((s["id"] for s in unique),
                      length_bucket([len(_seed_text(s)) for s in unique], cfg.length_buckets), strict=True))
    kept = []
    for task in sorted(by_task):
        queues: dict[int, list[dict]] = defaultdict(list)
        for s in sorted(by_task[task], key=lambda s: _order_key(cfg.seed, "seed", s["id"])):
            queues[strata[s["id"]]].append(s)
        order = []
        while any(queues.values()):
            for b in sorted(queues):
                if queues[b]:
                    order.append(queues[b].pop(0))
        kept += order[:quota[task]]
        dropped += [(s, SEED_NOT_SAMPLED, {"task": task, "quota": quota[task]}) for s in order[quota[task]:]]
    return sorted(kept, key=lambda s: s["id"]), dropped


# ---------------------------------------------------------------- draws


def _draw(weights: dict[str, float], names: Iterable[str], key: str) -> str:
    names = sorted(names)
    w = [_weight(weights, n) for n in names]
    if not any(x > 0 for x in w):
        raise ValueError(f"nothing to draw from: every weight of {names} is 0")
    return random.Random(key).choices(names, w)[0]


def draw_operation(seed_id: str, task: str, cfg: EvolConfig) -> str:
    """The step-1 operation of a seed (``id@version``, the newest version), by weight."""
    op = _draw(cfg.operation_weights, taxonomy.operations(task), f"{cfg.seed}/operation/{seed_id}")
    return taxonomy.load_operation(task, op).name


def draw_structure(conversation_id: str, cfg: EvolConfig) -> str:
    structure = _draw(cfg.structure_weights, taxonomy.structures(), f"{cfg.seed}/structure/{conversation_id}")
    return taxonomy.load_structure(structure).name


def draw_turns(conversation_id: str, cfg: EvolConfig) -> int:
    """User turns of a conversation, uniform in ``min_user_turns..max_user_turns``."""
    return random.Random(f"{cfg.seed}/turns/{conversation_id}").randint(cfg.min_user_turns, cfg.max_user_turns)


def conversation_id(seed: dict) -> str:
    return stable_id("evol", seed["lang"], seed["id"])


def plan_conversation(seed: dict, cfg: EvolConfig) -> dict:
    """The conversation a seed starts: its id, task, the drawn taxonomy path, no messages yet."""
    cid = conversation_id(seed)
    return {
        "id": cid,
        "lang": seed["lang"],
        "task": seed["task"],
        "evol": {"operation": draw_operation(seed["id"], seed["task"], cfg),
                 "structure": draw_structure(cid, cfg), "turns": draw_turns(cid, cfg)},
        "seed": {"id": seed["id"], "source": seed.get("source", {}),
                 "instruction": seed["instruction"], "response": seed["response"]},
        "messages": [],
    }


# ---------------------------------------------------------------- requests


def request_seed(conversation: str, step: str, salt: int) -> int:
    """The sampling seed of one call: the same call gets the same output on every run."""
    return int.from_bytes(hashlib.sha1(f"{salt}/{conversation}/{step}".encode()).digest()[:4], "big")


def bounded(schema: dict, max_chars: int) -> dict:
    """``schema`` with every free-text string at most ``max_chars`` long."""
    props = {k: ({**p, "maxLength": min(p.get("maxLength", max_chars), max_chars)}
                 if p.get("type") == "string" and "enum" not in p else p)
             for k, p in schema["properties"].items()}
    return {**schema, "properties": props}


def _language(lang: str) -> str:
    return languages.get(lang).name


def _task_fields(state: dict) -> dict[str, str]:
    return {"language": _language(state["lang"]), "task": state["task"],
            "task_description": taxonomy.tasks()[state["task"]].description}


def _request(template: taxonomy.Template, system: dict, user: dict, state: dict, step: str,
             cfg: EvolConfig, judge: bool = False) -> LlmRequest:
    return LlmRequest(
        messages=template.messages(system, user),
        max_tokens=cfg.judge_max_tokens if judge else cfg.max_tokens,
        temperature=cfg.judge_temperature if judge else cfg.temperature,
        top_p=cfg.top_p,
        seed=request_seed(state["id"], step, cfg.seed),
        schema=bounded(template.schema, cfg.max_turn_chars),
    )


def evolve_request(state: dict, cfg: EvolConfig) -> LlmRequest:
    """Step 1: the seed evolved by the drawn operation, and its answer."""
    template = taxonomy.load_template(cfg.evolve_prompt)
    fields = _task_fields(state)
    op = taxonomy.load_operation(state["task"], state["evol"]["operation"])
    system = {**fields, "operation": op.id, "operation_guidance": op.render(fields["language"])}
    user = {"seed_instruction": neutralise(state["seed"]["instruction"]).strip(),
            "seed_response": neutralise(state["seed"]["response"]).strip()}
    return _request(template, system, user, state, "evolve", cfg)


def user_turn_request(state: dict, cfg: EvolConfig) -> LlmRequest:
    """Step 2: the next user message, following the conversation's dialogue structure."""
    template = taxonomy.load_template(cfg.user_turn_prompt)
    fields = _task_fields(state)
    structure = taxonomy.load_structure(state["evol"]["structure"])
    turn = len(state["messages"]) // 2 + 1
    system = {**fields, "structure": structure.id, "structure_guidance": structure.render(fields["language"]),
              "turn": str(turn), "turns": str(state["evol"]["turns"])}
    return _request(template, system, {"conversation": render_conversation(state["messages"])}, state,
                    f"user{turn}", cfg)


def assistant_turn_request(state: dict, cfg: EvolConfig) -> LlmRequest:
    """Step 2: the assistant's answer to the last user message."""
    template = taxonomy.load_template(cfg.assistant_turn_prompt)
    turn = (len(state["messages"]) + 1) // 2
    return _request(template, _task_fields(state), {"conversation": render_conversation(state["messages"])},
                    state, f"assistant{turn}", cfg)


def judge_request(state: dict, cfg: EvolConfig) -> LlmRequest:
    """QC: the judge's rating of the whole conversation."""
    template = taxonomy.load_template(cfg.judge_prompt)
    return _request(template, _task_fields(state), {"conversation": render_conversation(state["messages"])},
                    state, "judge", cfg, judge=True)


def next_step(state: dict) -> str:
    """What a conversation needs next: evolve, user, assistant, judge, or done."""
    n, turns = len(state["messages"]), state["evol"]["turns"]
    if n == 0:
        return "evolve"
    if n < 2 * turns:
        return "user" if n % 2 == 0 else "assistant"
    return "done" if "judge" in state.get("scores", {}) else "judge"


_BUILDERS = {"evolve": evolve_request, "user": user_turn_request, "assistant": assistant_turn_request,
             "judge": judge_request}


def next_request(state: dict, cfg: EvolConfig) -> tuple[str, LlmRequest | None]:
    """(step, the request it needs) for a conversation; ("done", None) when it has them all."""
    step = next_step(state)
    return step, (_BUILDERS[step](state, cfg) if step in _BUILDERS else None)


# ---------------------------------------------------------------- answers


def finish_reason_of(result, max_tokens: int) -> str | None:
    """The finish reason of an ``llm.LlmResult``: its own field where it has one, else
    "length" when the usage shows ``max_tokens`` completion tokens."""
    reason = getattr(result, "finish_reason", None)
    if reason:
        return reason
    tokens = (getattr(result, "usage", None) or {}).get("completion_tokens")
    return "length" if tokens is not None and tokens >= max_tokens else None


def _json_fields(text: str | None, keys: Sequence[str]) -> dict | None:
    try:
        data = json.loads(text or "")
    except (json.JSONDecodeError, TypeError):
        return None
    if not isinstance(data, dict) or any(k not in data for k in keys):
        return None
    return data


def _shingles(text: str, n: int = 5) -> set[str]:
    t = normalize(text)
    return {t[i:i + n] for i in range(max(1, len(t) - n + 1))}


def repeats(text: str, earlier: Iterable[str], max_similarity: float) -> bool:
    """Whether ``text`` is an earlier message again: the same normalised text, or a char
    5-gram Jaccard similarity above ``max_similarity``."""
    key, grams = normalize(text), _shingles(text)
    for other in earlier:
        if normalize(other) == key:
            return True
        other_grams = _shingles(other)
        if len(grams & other_grams) / max(1, len(grams | other_grams)) > max_similarity:
            return True
    return False


def _turn_text(data: dict | None, key: str) -> str | None:
    value = data.get(key) if data else None
    return value.strip() if isinstance(value, str) else None


def parse_turn(text: str | None, finish_reason: str | None, key: str, earlier: Sequence[str],
               cfg: EvolConfig) -> tuple[str | None, str | None]:
    """(message, None) or (None, reason) for an answer that must be ``{key: "..."}``."""
    if finish_reason == "length":
        return None, TURN_TRUNCATED
    data = _json_fields(text, (key,))
    value = _turn_text(data, key)
    if value is None:
        return None, EVOL_UNPARSEABLE
    if not value:
        return None, TURN_EMPTY
    if len(value) > cfg.max_turn_chars:
        return None, TURN_TOO_LONG
    if repeats(value, earlier, cfg.max_turn_similarity):
        return None, TURN_REPEATED
    return value, None


def parse_evolved(text: str | None, finish_reason: str | None, seed_instruction: str,
                  cfg: EvolConfig) -> tuple[tuple[str, str] | None, str | None]:
    """Step 1's answer -> ((instruction, answer), None) or (None, reason)."""
    if finish_reason == "length":
        return None, TURN_TRUNCATED
    data = _json_fields(text, ("instruction", "answer"))
    instruction, answer = _turn_text(data, "instruction"), _turn_text(data, "answer")
    if instruction is None or answer is None:
        return None, EVOL_UNPARSEABLE
    if not instruction or not answer:
        return None, TURN_EMPTY
    if max(len(instruction), len(answer)) > cfg.max_turn_chars:
        return None, TURN_TOO_LONG
    if normalize(instruction) == normalize(seed_instruction):
        return None, EVOL_UNCHANGED
    if repeats(answer, [instruction], cfg.max_turn_similarity):
        return None, TURN_REPEATED
    return (instruction, answer), None


def parse_judge(text: str | None, finish_reason: str | None) -> tuple[int | None, str | None, str]:
    """(score 0-5, None, reasons) or (None, ``judge_unparseable``, "")."""
    if finish_reason == "length":
        return None, JUDGE_UNPARSEABLE, ""
    data = _json_fields(text, ("score",))
    score = data.get("score") if data else None
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 5:
        return None, JUDGE_UNPARSEABLE, ""
    return score, None, str(data.get("reasons", ""))[:600]


def apply_answer(state: dict, step: str, text: str | None, finish_reason: str | None,
                 cfg: EvolConfig) -> tuple[dict, str | None, dict]:
    """The conversation with ``step``'s answer added -> (new state, None, {}), or (state,
    reason, detail) when the answer is rejected (the whole conversation goes with it)."""
    earlier = [m["content"] for m in state["messages"]]
    detail = {"step": step, "turn": len(state["messages"]) // 2 + 1}
    if step == "evolve":
        pair, reason = parse_evolved(text, finish_reason, state["seed"]["instruction"], cfg)
        if reason:
            return state, reason, detail
        messages = [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
        return {**state, "messages": messages}, None, {}
    if step in ("user", "assistant"):
        value, reason = parse_turn(text, finish_reason, "user" if step == "user" else "answer", earlier, cfg)
        if reason:
            return state, reason, detail
        return {**state, "messages": [*state["messages"], {"role": step, "content": value}]}, None, {}
    if step == "judge":
        score, reason, why = parse_judge(text, finish_reason)
        if reason:
            return state, reason, detail
        return {**state, "scores": {**state.get("scores", {}), "judge": score}, "judge_reasons": why}, None, {}
    raise ValueError(f"unknown step {step!r}")


# ---------------------------------------------------------------- quality control


def turn_lid(predictions: Sequence[tuple[str, float]], expected: str) -> list[float]:
    """Per message, the language-ID confidence in the target language: the probability of
    the top label where that is ``expected`` (a lid.176 label), else 0.0."""
    return [round(float(p), 4) if label == expected else 0.0 for label, p in predictions]


def lid_verdict(predictions: Sequence[tuple[str, float]], expected: str | None,
                min_confidence: float | None) -> tuple[str | None, dict]:
    """(None, {}) or (reason, detail) for the conversation: one message in another language
    (``turn_lid_mismatch``) or in ours under ``min_confidence`` rejects it. No check where the
    threshold is None or the model cannot identify the language (``expected`` None)."""
    if min_confidence is None or expected is None:
        return None, {}
    for i, (label, p) in enumerate(predictions, 1):
        if label != expected:
            return TURN_LID_MISMATCH, {"message": i, "label": label, "prob": round(float(p), 4)}
        if p < min_confidence:
            return TURN_LID_LOW_CONFIDENCE, {"message": i, "prob": round(float(p), 4)}
    return None, {}


def judge_verdict(score: int | None, cfg: EvolConfig) -> str | None:
    """``judge_low`` under ``judge_min_score`` (None: keep all)."""
    if cfg.judge_min_score is not None and score is not None and score < cfg.judge_min_score:
        return JUDGE_LOW
    return None


def conversation_text(messages: Sequence[dict]) -> str:
    return "\n".join(m["content"] for m in messages)


def conversation_duplicates(conversations: Sequence[dict], cfg: EvolConfig) -> dict[str, tuple[str, str]]:
    """{dropped id: (reason, kept id)} over one language's finished conversations."""
    found = duplicates([(c["id"], conversation_text(c["messages"])) for c in conversations], cfg)
    return {k: (CONVERSATION_EXACT_DUPLICATE if kind == "exact" else CONVERSATION_NEAR_DUPLICATE, kept)
            for k, (kind, kept) in found.items()}


def mix_keep(counts: dict[str, int], weights: dict[str, float], max_deviation: float | None,
             max_drop: float = 1.0) -> dict[str, int]:
    """How many of each cell's ``counts`` to keep so that no cell's share of the N kept is over
    its target (its weight's share among the cells present, 1.0 where absent) by more than
    ``max_deviation`` plus one record (1/N): the largest N that allows, cutting only cells over
    that bound, the most over first (ties by name). N never goes under ``(1 - max_drop)`` of
    the total: where the bound needs more (a cell far under its target forces every other one
    down), the most over-represented cells are cut, one at a time, down to that floor. The
    one-record slack means a tiny set is never emptied: N = 1 always fits, and with N records
    every cell may hold ``(target + max_deviation) * N + 1``. None keeps everything."""
    present = {k: c for k, c in counts.items() if c > 0}
    total_weight = sum(_weight(weights, k) for k in present)
    if max_deviation is None or total_weight <= 0:
        return dict(counts)
    target = {k: _weight(weights, k) / total_weight for k in present}

    def caps(n: int) -> dict[str, int]:
        return {k: min(c, math.floor((target[k] + max_deviation) * n + 1e-9) + 1) for k, c in present.items()}

    def most_over(keep: dict[str, int], n: int) -> str:
        return max(sorted(keep), key=lambda k: keep[k] / n - target[k])

    n = sum(present.values())
    floor = max(1, math.ceil((1 - max_drop) * n - 1e-9))
    while n > floor and sum(caps(n).values()) < n:
        n -= 1
    keep = caps(n) if sum(caps(n).values()) >= n else dict(present)
    while sum(keep.values()) > n:
        keep[most_over(keep, sum(keep.values()))] -= 1
    return {k: keep.get(k, 0) for k in counts}


def mix_over_weight(conversations: Sequence[dict], cfg: EvolConfig) -> dict[str, dict]:
    """{dropped id: detail} over one language's kept conversations: ``mix_keep`` of its tasks by
    ``task_weights``; a task cut to q keeps ``quotas`` of its operations by ``operation_weights``
    (the over-represented ones lose most), and within a (task, operation) drops the lowest judge
    scores first, then in an order drawn from ``cfg.seed`` and the id: the same set gives the
    same drops whatever the order or number of workers."""
    by_task: dict[str, list[dict]] = defaultdict(list)
    for c in sorted(conversations, key=lambda c: c["id"]):
        by_task[c["task"]].append(c)
    keep = mix_keep({t: len(v) for t, v in by_task.items()}, cfg.task_weights, cfg.max_mix_deviation,
                    cfg.max_mix_drop)
    kept_n = sum(keep.values())
    dropped: dict[str, dict] = {}
    for task, members in sorted(by_task.items()):
        if keep[task] == len(members):
            continue
        by_op: dict[str, list[dict]] = defaultdict(list)
        for c in members:
            by_op[c["evol"]["operation"]].append(c)
        op_weights = {op: _weight(cfg.operation_weights, op.split("@")[0]) for op in by_op}
        op_keep = quotas({op: len(v) for op, v in by_op.items()}, op_weights, keep[task])
        for op, cell in sorted(by_op.items()):
            order = sorted(cell, key=lambda c: (c.get("scores", {}).get("judge", -1),
                                                _order_key(cfg.seed, "balance", c["id"])))
            for c in order[:len(cell) - op_keep[op]]:
                dropped[c["id"]] = {"task": task, "operation": op, "task_kept": keep[task],
                                    "task_count": len(members), "lang_kept": kept_n}
    return dropped


def record_stats(record: dict) -> list[tuple[str, int]]:
    """(stat name, count) pairs of a kept conversation for the stats and the report: its task,
    task/operation, dialogue structure, user turns, and characters per message by role, overall
    and per turn (``evol.turn_chars.{turn}.{role}``)."""
    evol_ = record["evol"]
    pairs = [(counts.evol(f"tasks.{record['task']}"), 1),
             (counts.evol(f"operations.{record['task']}/{evol_['operation']}"), 1),
             (counts.evol(f"structures.{evol_['structure']}"), 1), (counts.evol(f"turns.{evol_['turns']}"), 1)]
    for i, m in enumerate(record["messages"]):
        role, n, turn = m["role"], len(m["content"]), i // 2 + 1
        pairs += [(counts.evol(f"chars.{role}.count"), 1), (counts.evol(f"chars.{role}.sum"), n),
                  (counts.evol(f"turn_chars.{turn}.{role}.count"), 1), (counts.evol(f"turn_chars.{turn}.{role}.sum"), n)]
    return pairs


# ---------------------------------------------------------------- records


def prompt_names(state: dict, cfg: EvolConfig) -> dict[str, str]:
    """Every prompt file a conversation used, by role (provenance)."""
    op = taxonomy.load_operation(state["task"], state["evol"]["operation"])
    return {"evolve": taxonomy.load_template(cfg.evolve_prompt).name, "operation": op.path,
            "structure": taxonomy.load_structure(state["evol"]["structure"]).name,
            "user_turn": taxonomy.load_template(cfg.user_turn_prompt).name,
            "assistant_turn": taxonomy.load_template(cfg.assistant_turn_prompt).name,
            "judge": taxonomy.load_template(cfg.judge_prompt).name}


def conversation_record(state: dict, cfg: EvolConfig, models: dict[str, str], preset: str,
                        lid: Sequence[float] | None = None) -> dict:
    """The CONTRACT ``evol`` record of a finished conversation. ``evol.turns`` counts user
    turns; ``scores.lid`` (per message) is absent where language ID did not run."""
    messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in state["messages"]]
    scores: dict = {}
    if "judge" in state.get("scores", {}):
        scores["judge"] = int(state["scores"]["judge"])
    if lid is not None:
        if len(lid) != len(messages):
            raise ValueError(f"{len(lid)} language-ID scores for {len(messages)} messages")
        scores["lid"] = [float(x) for x in lid]
    return {
        "id": state["id"],
        "lang": state["lang"],
        "method": "evol",
        "messages": messages,
        "task": state["task"],
        "evol": {"operation": state["evol"]["operation"], "structure": state["evol"]["structure"],
                 "turns": sum(m["role"] == "user" for m in messages)},
        "seed": {"id": str(state["seed"]["id"]), "source": dict(state["seed"].get("source") or {})},
        "scores": scores,
        "provenance": {"models": dict(models), "prompts": prompt_names(state, cfg), "preset": preset},
    }


def conversation_reject(state: dict, stage: str, reason: str, detail: dict | None = None) -> dict:
    """The reject line of a conversation (or a seed: a state from ``plan_conversation``)."""
    text = state["messages"][-1]["content"] if state.get("messages") else state["seed"]["instruction"]
    line = {"id": state["id"], "lang": state["lang"], "stage": stage, "reason": reason, "text": text,
            "source": dict(state["seed"].get("source") or {}), "seed": {"id": state["seed"]["id"]}}
    if detail:
        line["detail"] = detail
    return line


def seed_reject(seed: dict, reason: str, detail: dict | None = None) -> dict:
    """The reject line of a seed dropped by ``select_seeds``."""
    line = {"id": seed["id"], "lang": seed["lang"], "stage": "select", "reason": reason,
            "text": seed["instruction"], "source": dict(seed.get("source") or {})}
    if detail:
        line["detail"] = detail
    return line
