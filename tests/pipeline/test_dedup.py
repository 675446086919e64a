"""FindDuplicates on Beam runners: the same kept paragraphs for any number of workers, and
steps whose groups do not grow with the size of a duplicate cluster."""

import json
from dataclasses import replace

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from tests.unit.test_dedup import PARAMS, entries_of, templated
from transforms.records import spill
from transforms.select import dedup

HEADS = 4


def batches(entries, shards, spill_dir):
    """Bucket entries as ScoreParagraphs emits them: (exact, band) tables per (lang, key shard)
    and batch, in spill files under ``spill_dir``, by reference."""
    spill_dir.mkdir(exist_ok=True)
    writer = spill.SpillWriter(str(spill_dir))
    refs = [
        (("spa", s), writer.put(dedup.pack(*parts)))
        for exact, band in entries
        for s, parts in dedup.by_key_shard(exact, band, shards)
    ]
    writer.close()
    return refs


def run(elements, shards, out_dir=None, *options, max_roots=10**6):
    p = beam.Pipeline(options=PipelineOptions(list(options)))
    params = replace(PARAMS, component_shards=shards, heads=HEADS, max_union_roots=max_roots)
    found = p | beam.Create(elements) | dedup.FindDuplicates({"spa": params})
    if out_dir:
        found | beam.Map(json.dumps) | beam.io.WriteToText(f"{out_dir}/dup")
    result = p.run()
    result.wait_until_finish()
    return result


def read_lines(out_dir):
    return sorted(line for f in sorted(out_dir.glob("dup*")) for line in f.read_text().splitlines())


@pytest.mark.slow
def test_one_and_four_worker_processes_keep_the_same_paragraphs(tmp_path):
    texts = templated(4, 150, seed=5) + templated(30, 3, seed=6)
    elements = batches(entries_of(texts), 16, tmp_path / "spill")
    run(elements, 16, tmp_path / "one", "--direct_num_workers=1")
    run(elements, 16, tmp_path / "four", "--direct_num_workers=4", "--direct_running_mode=multi_processing")
    one, four = read_lines(tmp_path / "one"), read_lines(tmp_path / "four")
    assert one == four and len(one) > 4 * 140
    expected = dedup.find_duplicates(entries_of(texts), replace(PARAMS.sharded(16), heads=HEADS))
    assert len(one) == len(expected)


def held(result) -> dict[str, int]:
    metrics = result.metrics().query(MetricsFilter().with_namespace("dedup"))["distributions"]
    return {m.key.metric.name[len("held_"):]: m.committed.max for m in metrics}


@pytest.mark.slow
def test_no_step_holds_a_whole_cluster(tmp_path):
    """800 paragraphs as 100 clusters of 8, then as one cluster of 800: what any step holds at
    once stays about paragraphs / shards, and a component's summaries at most one a shard."""
    n, shards = 800, 8
    for copies in (8, n):
        texts = templated(n // copies, copies, seed=7)
        sizes = held(run(batches(entries_of(texts), shards, tmp_path / f"spill{copies}"), shards))
        bound = 4 * n // shards
        assert max(sizes["components"], sizes["boundary"], sizes["duplicates"]) <= bound, sizes
        assert sizes.get("residual", 0) <= bound, sizes
        assert sizes["component"] <= shards, sizes


def test_a_union_of_roots_over_its_bound_fails_the_run(tmp_path):
    elements = batches(entries_of(templated(60, 10, seed=2)), 16, tmp_path / "spill")
    sizes = held(run(elements, 16))
    assert sizes["residual"] > 1  # the shards leave roots to join here (10 measured)
    run(elements, 16, max_roots=sizes["residual"])
    with pytest.raises(Exception, match="max_union_roots"):
        run(elements, 16, max_roots=sizes["residual"] - 1)
