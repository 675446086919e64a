"""Which stages a re-run takes from its checkpoints: fingerprints follow what determines a
stage's output, and a stage is reused only if it and every stage before it are complete."""

import dataclasses
import json

import pytest

from pipeline import config as config_mod
from pipeline.ops import resume
from transforms.records import checkpoint


@pytest.fixture
def sample_input(tmp_path):
    path = tmp_path / "in" / "tel.txt"
    path.parent.mkdir()
    path.write_text("one paragraph\n\n", encoding="utf-8")
    return {"tel": str(path)}


def changed(config, section: str, **values):
    return dataclasses.replace(config, **{section: dataclasses.replace(getattr(config, section), **values)})


def test_a_threshold_change_redoes_its_stage_and_the_later_ones_only(sample_input):
    config = config_mod.load("demo")
    before = resume.fingerprints(config, sample_input, "qe")
    after = resume.fingerprints(changed(config, "judge", min_score=4), sample_input, "qe")
    same = [stage for stage in before if before[stage] == after[stage]]
    assert same == ["select", "translate", "generate"]


def test_batch_sizes_devices_and_endpoints_change_no_fingerprint(sample_input):
    config = config_mod.load("demo")
    faster = changed(config, "translate", records_per_batch=3, batch_tokens=99, device="cpu")
    faster = changed(faster, "llm", concurrency=1, endpoint="http://elsewhere:8000/v1")
    assert resume.fingerprints(faster, sample_input, "qe") == resume.fingerprints(config, sample_input, "qe")


def test_a_changed_input_file_or_prompt_redoes_what_depends_on_it(sample_input):
    config = config_mod.load("demo")
    before = resume.fingerprints(config, sample_input, "qe")
    fewer_tasks = changed(config, "generate", tasks={"mcq@1": 1.0})
    assert resume.fingerprints(fewer_tasks, sample_input, "qe")["translate"] == before["translate"]
    assert resume.fingerprints(fewer_tasks, sample_input, "qe")["generate"] != before["generate"]
    with open(sample_input["tel"], "a", encoding="utf-8") as f:
        f.write("another document\n")
    assert resume.fingerprints(config, sample_input, "qe")["select"] != before["select"]


def write_marker(out, stage, lang, fingerprint, stats=()):
    directory = out / "stages" / stage / lang
    directory.mkdir(parents=True, exist_ok=True)
    marker = {"fingerprint": fingerprint, "files": [], "stats": [list(pair) for pair in stats]}
    (directory / checkpoint.MARKER).write_text(json.dumps(marker))


PRINTS = {stage: {"tel": f"{stage}-tel", "hin": f"{stage}-hin"} for stage in ("select", "translate", "generate")}


def test_the_chain_of_complete_matching_checkpoints_is_reused(tmp_path):
    for lang in ("tel", "hin"):
        write_marker(tmp_path, "select", lang, f"select-{lang}")
    write_marker(tmp_path, "translate", "tel", "translate-tel")  # hin's translate never finished
    write_marker(tmp_path, "generate", "tel", "generate-tel")
    write_marker(tmp_path, "generate", "hin", "generate-hin")
    plan = resume.plan(str(tmp_path), PRINTS)
    assert list(plan.reused) == ["select"] and plan.run == ("translate", "generate")


def test_a_stale_fingerprint_stops_the_chain(tmp_path):
    for lang in ("tel", "hin"):
        write_marker(tmp_path, "select", lang, "old config")
        write_marker(tmp_path, "translate", lang, f"translate-{lang}")
    assert resume.plan(str(tmp_path), PRINTS).run == ("select", "translate", "generate")


def test_from_stage_redoes_that_stage_and_needs_the_ones_before(tmp_path):
    for lang in ("tel", "hin"):
        for stage in ("select", "translate", "generate"):
            write_marker(tmp_path, stage, lang, f"{stage}-{lang}")
    assert resume.plan(str(tmp_path), PRINTS).run == ()
    plan = resume.plan(str(tmp_path), PRINTS, from_stage="translate")
    assert list(plan.reused) == ["select"] and plan.run == ("translate", "generate")
    with pytest.raises(resume.ResumeError, match="no complete checkpoint"):
        resume.plan(str(tmp_path / "elsewhere"), PRINTS, from_stage="generate")


def test_a_checkpoint_holding_transient_errors_is_redone_with_the_stages_after_it(tmp_path):
    for lang in ("tel", "hin"):
        write_marker(tmp_path, "select", lang, f"select-{lang}")
        write_marker(tmp_path, "generate", lang, f"generate-{lang}")
    write_marker(tmp_path, "translate", "tel", "translate-tel",
                 [("stages.translate.in", 10), ("stages.translate.rejected.segment_too_long", 2)])
    write_marker(tmp_path, "translate", "hin", "translate-hin",
                 [("stages.translate.in", 10), ("stages.translate.rejected.llm_error", 1)])
    plan = resume.plan(str(tmp_path), PRINTS)
    assert list(plan.reused) == ["select"] and plan.run == ("translate", "generate")
    # --from-stage reuses the stages before it as they are
    assert list(resume.plan(str(tmp_path), PRINTS, from_stage="generate").reused) == ["select", "translate"]


def test_other_reject_reasons_leave_a_checkpoint_complete(tmp_path):
    for lang in ("tel", "hin"):
        for stage in ("select", "translate", "generate"):
            write_marker(tmp_path, stage, lang, f"{stage}-{lang}",
                         [(f"stages.{stage}.in", 5), (f"stages.{stage}.rejected.mcq_invalid", 5),
                          (f"stages.{stage}.rejected.llm_error", 0)])
    assert resume.plan(str(tmp_path), PRINTS).run == ()
