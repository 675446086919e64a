"""The evol method's balance stage: the kept task mix near its configured weights
(``evol.mix_keep``, ``evol.mix_over_weight``, ``evol_stages.BalanceMix``)."""

import dataclasses
import math
import random
from collections import Counter

from transforms.models import evol

CFG = evol.EvolConfig()


def conversation(i: int, task: str, operation: str = "deepen@1", judge: int = 3, lang: str = "tel") -> dict:
    return {"id": f"c{i:05d}", "lang": lang, "task": task, "scores": {"judge": judge},
            "evol": {"operation": operation, "structure": "follow_up@1", "turns": 2},
            "seed": {"id": f"s{i:05d}", "source": {}, "instruction": "x", "response": "y"},
            "messages": [{"role": "user", "content": f"u{i}"}, {"role": "assistant", "content": f"a{i}"}]}


def shares(counts: dict[str, int]) -> dict[str, float]:
    n = sum(counts.values())
    return {k: c / n for k, c in counts.items()}


def test_a_skewed_mix_is_cut_to_its_weights_within_the_tolerance():
    # judge drops skewed the kept mix: equal weights, math kept 3x as often as the others
    counts = {"math": 300, "code": 100, "open_qa": 100, "summarization": 100}
    keep = evol.mix_keep(counts, {}, 0.02)
    n = sum(keep.values())
    assert keep["math"] < 300 and all(keep[t] == 100 for t in ("code", "open_qa", "summarization"))
    assert all(s <= 0.25 + 0.02 + 1 / n for s in shares(keep).values())
    assert keep["math"] + 1 > (0.25 + 0.02) * (n + 1)  # the largest N that fits: one more would not
    # unequal weights: the target is the weight's share among the tasks present
    keep = evol.mix_keep({"math": 500, "code": 500}, {"math": 3.0, "code": 1.0}, 0.02)
    assert keep["math"] == 500 and keep["code"] < 500
    assert shares(keep)["code"] <= 0.25 + 0.02 + 1 / sum(keep.values())


def test_a_balanced_mix_loses_nothing():
    counts = {"math": 100, "code": 100, "open_qa": 99}
    assert evol.mix_keep(counts, {}, 0.02) == counts
    assert evol.mix_keep({"math": 300, "code": 100}, {"math": 3.0}, 0.0) == {"math": 300, "code": 100}
    assert evol.mix_keep({"math": 300, "code": 1}, {}, None) == {"math": 300, "code": 1}  # off


def test_a_task_far_under_its_weight_cuts_the_others_down_to_the_drop_bound():
    # the judge nearly emptied math: the others are over their quarter, cut evenly but bounded
    counts = {"math": 2, "code": 100, "open_qa": 100, "summarization": 100}
    assert evol.mix_keep(counts, {}, 0.02, max_drop=0.2) == {"math": 2, "code": 80, "open_qa": 80,
                                                             "summarization": 80}
    # unbounded: the mix within the tolerance whatever it costs; 8 <= 0.27 * 26 + 1, 9 > 0.27 * 27 + 1
    assert evol.mix_keep(counts, {}, 0.02) == {"math": 2, "code": 8, "open_qa": 8, "summarization": 8}
    assert evol.mix_keep(counts, {}, 0.02, max_drop=0.0) == counts


def test_few_records_are_never_emptied():
    # one record of slack: a cell may hold (target + tolerance) * N + 1
    assert evol.mix_keep({"math": 1}, {}, 0.0) == {"math": 1}
    assert evol.mix_keep({"math": 3, "code": 1}, {}, 0.0) == {"math": 3, "code": 1}  # 3 <= 0.5 * 4 + 1
    assert evol.mix_keep({"math": 4, "code": 1}, {}, 0.0) == {"math": 3, "code": 1}
    assert evol.mix_keep({"math": 5}, {"code": 1.0}, 0.02) == {"math": 5}  # only the tasks present count
    # the demo's size: 6 conversations over 3 tasks at the demo's tolerance (0.1)
    for split, kept in (((2, 2, 2), (2, 2, 2)), ((3, 2, 1), (3, 2, 1)), ((4, 1, 1), (3, 1, 1)),
                        ((5, 1, 0), (4, 1, 0)), ((6, 0, 0), (6, 0, 0))):
        assert evol.mix_keep(dict(zip("abc", split, strict=True)), {}, 0.1) == dict(zip("abc", kept, strict=True))


def test_random_mixes_stay_within_the_tolerance():
    rng = random.Random(7)
    for _ in range(300):
        tasks = rng.sample(["math", "code", "ner", "mcq", "open_qa"], rng.randint(1, 5))
        counts = {t: rng.randint(0, 60) for t in tasks}
        weights = {t: rng.choice([0.5, 1.0, 2.0]) for t in tasks}
        tol, max_drop = rng.choice([0.0, 0.02, 0.1]), rng.choice([0.1, 0.5, 1.0])
        keep = evol.mix_keep(counts, weights, tol, max_drop)
        n = sum(keep.values())
        assert n >= (1 - max_drop) * sum(counts.values()) - 1e-9
        assert all(0 <= keep[t] <= counts[t] for t in counts)
        assert (n > 0) == (sum(counts.values()) > 0)
        present = {t for t in counts if counts[t]}
        total = sum(weights[t] for t in present)
        within = all(keep[t] <= (weights[t] / total + tol) * n + 1 + 1e-9 for t in present)
        assert within or n == math.ceil((1 - max_drop) * sum(counts.values()) - 1e-9)  # or at the drop bound
        for t in present:
            if within and keep[t] < counts[t]:  # only a task at its bound is cut
                assert keep[t] + 1 > (weights[t] / total + tol) * n


def test_mix_over_weight_drops_the_lowest_scores_of_the_over_represented_operations():
    cfg = dataclasses.replace(CFG, max_mix_deviation=0.02, max_mix_drop=1.0)
    states = [conversation(i, "code", "deepen@1", judge=5) for i in range(100)]
    states += [conversation(100 + i, "math", "deepen@1", judge=i % 6) for i in range(200)]
    states += [conversation(300 + i, "math", "concretise@1", judge=5) for i in range(100)]
    dropped = evol.mix_over_weight(states, cfg)
    kept = [s for s in states if s["id"] not in dropped]
    task_counts = Counter(s["task"] for s in kept)
    assert task_counts["code"] == 100 and task_counts["math"] < 300
    assert task_counts["math"] / len(kept) <= 0.5 + 0.02 + 1 / len(kept)
    assert all(d["task"] == "math" for d in dropped.values())
    # math/deepen (200 of 300) is over its half of math: it loses the most, its lowest scores first
    ops = Counter(s["evol"]["operation"] for s in kept if s["task"] == "math")
    assert abs(ops["deepen@1"] - ops["concretise@1"]) <= 1
    dropped_scores = [s["scores"]["judge"] for s in states if s["id"] in dropped and s["evol"]["operation"] == "deepen@1"]
    kept_scores = [s["scores"]["judge"] for s in kept if s["task"] == "math" and s["evol"]["operation"] == "deepen@1"]
    assert max(dropped_scores) <= min(kept_scores)
    # the same set in another order gives the same drops
    assert evol.mix_over_weight(list(reversed(states)), cfg) == dropped
    assert evol.mix_over_weight(states, dataclasses.replace(cfg, max_mix_deviation=None)) == {}


def test_balance_stage_on_a_beam_runner():
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from transforms.models.evol_stages import BalanceMix

    cfg = dataclasses.replace(CFG, max_mix_deviation=0.02, max_mix_drop=1.0)
    states = [conversation(i, "math") for i in range(30)] + [conversation(30 + i, "code") for i in range(10)]
    states += [conversation(40 + i, "math", lang="hin") for i in range(5)]
    expected = evol.mix_over_weight(states[:40], cfg)
    assert len(expected) == 30 - 12  # math may hold (0.5 + 0.02) * 22 + 1 = 12 of 22
    with TestPipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(states) | BalanceMix({"tel": cfg, "hin": cfg})
        assert_that(out.records | "Ids" >> beam.Map(lambda s: s["id"]),
                    equal_to([s["id"] for s in states if s["id"] not in expected]), label="kept")
        assert_that(out.rejects | "Reasons" >> beam.Map(lambda r: (r["id"], r["reason"], r["stage"])),
                    equal_to([(i, evol.MIX_OVER_WEIGHT, "balance") for i in expected]), label="rejects")
        counts = out.stats | beam.CombinePerKey(sum)
        assert_that(counts, equal_to([(("tel", "stages.balance.in"), 40), (("tel", "stages.balance.out"), 22),
                                      (("tel", "stages.balance.rejected.mix_over_weight"), 18),
                                      (("hin", "stages.balance.in"), 5), (("hin", "stages.balance.out"), 5)]),
                    label="stats")
