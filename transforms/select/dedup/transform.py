"""The Beam shell of dedup: each step of ``components`` a DoFn over its input grouped by shard;
the DoFns only unpack, call the step and route its output."""

from __future__ import annotations

from collections import defaultdict

import apache_beam as beam

from transforms.records import spill
from transforms.records.shapes import pickled, unpickled
from transforms.select.dedup.components import (
    group_components,
    keep_by_shard,
    link_buckets,
    root_conflicts,
    roots_union,
    route_summaries,
    shard_components,
    shard_duplicates,
)
from transforms.select.dedup.entries import unpack
from transforms.select.dedup.params import DedupParams

Params = dict[str, DedupParams]  # language code -> its dedup's params


def _held(step: str, n: int) -> None:
    """The size of what a step holds at once (paragraphs, rows or bucket keys), for tests
    and monitoring."""
    beam.metrics.Metrics.distribution("dedup", f"held_{step}").update(n)


class _LinkBuckets(beam.DoFn):
    def __init__(self, params: Params):
        self.params = params

    def process(self, element):
        (lang, _), refs = element
        for s, facts in link_buckets(map(unpack, spill.take(refs)), self.params[lang]).items():
            # as plain tuples in Fact's field order: pickling a NamedTuple runs Python code for
            # each one, both ways; ``local_components`` reads the fields by position
            yield (lang, s), pickled(list(map(tuple, facts)))


class _LocalComponents(beam.DoFn):
    def __init__(self, params: Params):
        self.params = params

    def process(self, element):
        (lang, s), batches = element
        own, boundary, summaries = shard_components(unpickled(batches), self.params[lang])
        _held("components", len(own) + sum(map(len, boundary.values())))
        for t, rows in boundary.items():
            yield beam.pvalue.TaggedOutput("boundary", ((lang, t), pickled(rows)))
        yield beam.pvalue.TaggedOutput("summaries", (lang, s, summaries))
        yield (lang, s), pickled(own)


def _conflicts(element):
    (lang, _), batches = element
    rows = list(unpickled(batches))
    _held("boundary", len(rows))
    yield lang, pickled(list(root_conflicts(rows)))


def _roots_union(element, params: Params):
    lang, links = element
    roots = roots_union(unpickled(links), params[lang].max_union_roots, lang)
    _held("residual", len(roots))
    return lang, roots


class _ByComponent(beam.DoFn):
    def __init__(self, params: Params):
        self.params = params

    def process(self, element, roots: dict):
        lang, s, summaries = element
        for t, rows in route_summaries(s, summaries, roots.get(lang, {}), self.params[lang]).items():
            yield (lang, t), pickled(rows)


def _keep(element):
    (lang, _), batches = element
    components = group_components(unpickled(batches))
    for rows in components.values():
        _held("component", len(rows))
    for s, rows in keep_by_shard(components.values()).items():
        yield (lang, s), pickled(rows)


def _shard_duplicates(element, group):
    (lang, _), grouped = element
    kept_of = dict(unpickled(grouped["kept"]))
    own = list(unpickled(grouped["own"]))
    _held("duplicates", len(own) + len(kept_of))
    by_group = defaultdict(list)
    for (source, file, doc, i), reason, kept in shard_duplicates(own, kept_of):
        by_group[group(lang, source, file, doc)].append((doc, i, reason, kept))
    yield from by_group.items()


def _by_document(lang: str, source: str, file: str, doc: int) -> tuple[str, str, str, int]:
    return lang, source, file, doc


class FindDuplicates(beam.PTransform):
    """Bucket entries ``((lang, key shard), spill.Ref)`` (of ``pack``ed exact and band Entries:
    only the references cross the first shuffle, the entries are read back one key shard at a
    time) -> ``(group,
    [(doc, index, reason, kept position), ...])`` for the duplicate paragraphs, where
    ``group(lang, source, file, doc)`` is the key their documents are joined under (default:
    the document). ``params``: each language's ``DedupParams``.

        entries --GroupByKey(key shard)--link_buckets--> facts --GroupByKey(node shard)
            --shard_components--> own rows, boundary rows, summaries
        boundary --GroupByKey(node shard)--root_conflicts--> root links --GroupByKey(lang)
            --roots_union (at most max_union_roots)--> {root: component root} per language
        summaries (+ those maps as side input) --route_summaries--GroupByKey(component shard)
            --group_components, keep_by_shard--> kept
        own rows + kept --CoGroupByKey(node shard)--shard_duplicates--> duplicates by document

    Bucket entries travel in ``dedup.shards`` shards of keys, the rest in ``component_shards``
    shards of paragraphs; every group is one shard's entries, facts or rows, and a component
    has at most one summary per shard and local root. Only ``roots_union`` is per language,
    over the local roots the shards disagree on, and bounded by ``dedup.max_union_roots``.
    ``find_duplicates`` runs the same steps in one process."""

    def __init__(self, params: Params, group=_by_document):
        super().__init__()
        self.params, self.group = params, group

    def expand(self, entries):
        parts = (
            entries
            | "BucketShards" >> beam.GroupByKey()
            | "LinkBuckets" >> beam.ParDo(_LinkBuckets(self.params))
            | "NodeShards" >> beam.GroupByKey()
            | "LocalComponents" >> beam.ParDo(_LocalComponents(self.params)).with_outputs(
                "boundary", "summaries", main="own"
            )
        )
        roots = (
            parts.boundary
            | "BoundaryShards" >> beam.GroupByKey()
            | "Conflicts" >> beam.FlatMap(_conflicts)
            | "ByLang" >> beam.GroupByKey()
            | "RootsUnion" >> beam.Map(_roots_union, self.params)
        )
        kept = (
            parts.summaries
            | "ByComponent" >> beam.ParDo(_ByComponent(self.params), beam.pvalue.AsDict(roots))
            | "Components" >> beam.GroupByKey()
            | "Keep" >> beam.FlatMap(_keep)
        )
        return (
            {"own": parts.own, "kept": kept}
            | "Join" >> beam.CoGroupByKey()
            | "Duplicates" >> beam.FlatMap(_shard_duplicates, self.group)
        )
