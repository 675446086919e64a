from transforms.records import counts


def test_a_stage_count_reads_back_what_was_built():
    assert counts.stage_count(counts.stage("judge", "in")) == counts.StageCount("judge", "in")
    assert counts.stage_count(counts.stage_rejected("judge", "judge_low")) == ("judge", "rejected", "judge_low")
    assert counts.stage_count(counts.stage_flagged("translate", "a.b")) == ("translate", "flagged", "a.b")
    assert counts.stage_count(counts.PARAGRAPHS_READ) is None


def test_a_source_count_reads_back_what_was_built():
    assert counts.source_count(counts.source("aya", "read")) == ("aya", "read")
    assert counts.source_count(counts.source_rejected("aya", "too_short")) == ("aya", "rejected.too_short")
    assert counts.source_count(counts.stage("qe", "in")) is None


def test_prefixed_gives_the_rest_of_each_name_in_order():
    sums = {counts.paragraphs_rejected("b"): 2, counts.paragraphs_rejected("a"): 1, counts.PARAGRAPHS_READ: 3}
    assert list(counts.prefixed(sums, counts.PARAGRAPHS_REJECTED).items()) == [("a", 1), ("b", 2)]
    assert counts.any_of(sums, counts.PARAGRAPHS_REJECTED) and not counts.any_of(sums, counts.SEEDS)
