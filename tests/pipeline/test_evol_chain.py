"""The evol method end to end on real engines: seed rows (JSONL and Parquet) -> select ->
evolve -> turns -> qc -> judge, with the tiny Llama served by a real vLLM server process (CPU)
that the pipeline starts and stops, and lid.176 checking every turn. One run makes the
conversations; the other runs reuse its checkpoints or its model-call cache."""

import json
import shutil
from pathlib import Path

import pytest

from pipeline.config import load
from pipeline.methods import EVOL

EVOL_STAGES = EVOL.names
from pipeline.main import main
from pipeline.options import SAMPLE_SEEDS
from prompts import taxonomy
from tests.pipeline.conftest import load_with_datasets, read_jsonl, require_vllm_env
from transforms.models import evol

ROOT = Path(__file__).resolve().parents[2]
LANGS = ("tel", "hin")


def seed_rows() -> list[dict]:
    return [json.loads(line) for line in Path(SAMPLE_SEEDS).read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def seed_dir(tmp_path_factory) -> Path:
    """The bundled seeds of tel as JSONL and of hin as Parquet, one file per language."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory = tmp_path_factory.mktemp("seeds")
    rows = seed_rows()
    with open(directory / "tel.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows if r["lang"] == "tel")
    pq.write_table(pa.Table.from_pylist([r for r in rows if r["lang"] == "hin"]), directory / "hin.parquet")
    return directory


def run(out: Path, seeds: Path, *extra: str) -> None:
    assert main(["--method", "evol", "--langs", ",".join(LANGS), "--input", str(seeds / "{lang}.*"),
                 "--output", str(out), *extra]) == 0


@pytest.fixture(scope="module")
def evol_run(tmp_path_factory, seed_dir) -> Path:
    require_vllm_env(ROOT / ".venv-vllm" / "bin" / "python")
    out = tmp_path_factory.mktemp("evol")
    run(out, seed_dir)
    return out


def by_id(records: list[dict]) -> list[dict]:
    return sorted(records, key=lambda r: r["id"])


def copy_run(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


@pytest.mark.slow
@pytest.mark.parametrize("lang", LANGS)
def test_every_seed_and_conversation_is_accounted_for(evol_run, lang):
    stats = json.loads((evol_run / "stats" / f"{lang}.json").read_text())
    seeds = stats["seeds"]
    assert seeds["read"] == 9 and seeds["read"] == seeds["kept"] + sum(seeds["rejected"].values())
    assert seeds["rejected"] == {"seed_exact_duplicate": 1, "seed_not_sampled": 2}
    assert stats["selected_records"] == seeds["kept"] == 6
    assert list(stats["stages"]) == list(EVOL_STAGES[1:])
    expected_in = stats["selected_records"]
    for name, stage in stats["stages"].items():
        assert stage["in"] == expected_in and stage["in"] == stage["out"] + sum(stage["rejected"].values()), name
        expected_in = stage["out"]
    records = read_jsonl(evol_run / "data" / lang)
    assert len(records) == stats["stages"][EVOL_STAGES[-1]]["out"] == stats["dataset"]["records"] > 0
    rejects = read_jsonl(evol_run / "rejects" / lang)
    assert len(rejects) == sum(seeds["rejected"].values()) + sum(
        sum(s["rejected"].values()) for s in stats["stages"].values())
    assert sum(stats["evol"]["turns"].values()) == len(records)


@pytest.mark.slow
@pytest.mark.parametrize("lang", LANGS)
def test_records_are_conversations_with_their_taxonomy_path(evol_run, lang):
    cfg = load("demo").evol
    kinds = {"tel": "jsonl", "hin": "parquet"}
    for r in read_jsonl(evol_run / "data" / lang):
        assert r["method"] == "evol" and r["lang"] == lang
        roles = [m["role"] for m in r["messages"]]
        assert roles == ["user", "assistant"] * r["evol"]["turns"]
        assert cfg.min_user_turns <= r["evol"]["turns"] <= cfg.max_user_turns
        assert all(m["content"].strip() and len(m["content"]) <= cfg.max_turn_chars for m in r["messages"])
        ops = {taxonomy.load_operation(r["task"], op).name for op in taxonomy.operations(r["task"])}
        assert r["evol"]["operation"] in ops
        assert r["evol"]["structure"] in {taxonomy.load_structure(s).name for s in taxonomy.structures()}
        assert r["seed"]["source"]["kind"] == kinds[lang] and r["seed"]["source"]["row"] >= 0
        assert 0 <= r["scores"]["judge"] <= 5 and len(r["scores"]["lid"]) == len(r["messages"])
        assert set(r["provenance"]["models"]) == {"evolve", "turns", "lid", "judge"}
        assert r["provenance"]["prompts"]["operation"] == f"{r['task']}/{r['evol']['operation']}"


@pytest.mark.slow
def test_operations_structures_and_turns_are_drawn_from_the_seed(evol_run):
    """The taxonomy path of each conversation is the one the pure draw gives its seed."""
    cfg = load("demo").evol
    rows = {r["id"]: r for r in seed_rows()}
    for lang in LANGS:
        for r in read_jsonl(evol_run / "data" / lang):
            seed, reason, _ = evol.seed_from_row(rows[r["seed"]["id"]], cfg)
            assert reason is None
            plan = evol.plan_conversation(seed, cfg)
            assert (plan["id"], plan["evol"]) == (r["id"], r["evol"])


@pytest.mark.slow
def test_a_resumed_stage_makes_no_model_call(evol_run, seed_dir, tmp_path):
    """Redoing every model stage from the cache: the same conversations, no call made (the
    server is never started)."""
    out = copy_run(evol_run, tmp_path / "out")
    run(out, seed_dir, "--from-stage", "evolve")
    calls = json.loads((out / "run.json").read_text())["model_calls"]
    assert set(calls) == {"evolve", "turns", "judge"}
    assert all(n["made"] == 0 and n["cached"] > 0 for n in calls.values())
    for lang in LANGS:
        assert by_id(read_jsonl(out / "data" / lang)) == by_id(read_jsonl(evol_run / "data" / lang))


@pytest.mark.slow
def test_a_turn_in_another_language_rejects_its_conversation(evol_run, seed_dir, tmp_path):
    """With the per-turn check on, the random model's turns (no language, mostly another
    script) reject their conversations in qc with the reason and the message that failed;
    select, evolve and turns are reused from their checkpoints."""
    out = copy_run(evol_run, tmp_path / "out")
    (tmp_path / "lid.yaml").write_text("evol: {min_turn_lid_confidence: 0.5}\n")
    run(out, seed_dir, "--config", str(tmp_path / "lid.yaml"))
    assert json.loads((out / "run.json").read_text())["stages"]["reused"] == ["select", "evolve", "turns"]
    expected = {"tel": "te", "hin": "hi"}
    for lang in LANGS:
        qc = json.loads((out / "stats" / f"{lang}.json").read_text())["stages"]["qc"]
        lid_rejects = [r for r in read_jsonl(out / "rejects" / lang) if r["stage"] == "qc"]
        assert qc["rejected"].get(evol.TURN_LID_MISMATCH, 0) > 0
        for r in lid_rejects:
            assert r["reason"] in (evol.TURN_LID_MISMATCH, evol.TURN_LID_LOW_CONFIDENCE)
            assert r["detail"]["message"] >= 1
            if r["reason"] == evol.TURN_LID_MISMATCH:
                assert r["detail"]["label"] != expected[lang]
        for record in read_jsonl(out / "data" / lang):
            assert min(record["scores"]["lid"]) >= 0.5


@pytest.mark.slow
def test_conversations_load_with_datasets_as_a_messages_column(evol_run, tmp_path):
    data = load_with_datasets(evol_run, "tel", tmp_path / "cache")
    assert "messages" in data.column_names and len(data) > 0
    assert data[0]["messages"][0]["role"] == "user"


def test_seed_selection_of_a_shared_seed_file(tmp_path):
    """--until select on the bundled seeds (one file, every language): rows of the run's
    languages are kept or rejected with a reason, the others counted in run.json."""
    assert main(["--method", "evol", "--langs", "tel", "--output", str(tmp_path), "--until", "select"]) == 0
    stats = json.loads((tmp_path / "stats" / "tel.json").read_text())
    assert stats["seeds"]["read"] == 9 and stats["selected_records"] == 6 == len(read_jsonl(tmp_path / "data" / "tel"))
    assert len(read_jsonl(tmp_path / "rejects" / "tel")) == 3
    run_info = json.loads((tmp_path / "run.json").read_text())
    assert run_info["unassigned_seed_rows"] == {"other_language": 27}
    for r in read_jsonl(tmp_path / "data" / "tel"):
        assert "messages" not in r and r["evol"]["turns"] >= 2


def test_a_stage_of_the_other_method_is_a_usage_error(capsys):
    assert main(["--method", "evol", "--langs", "tel", "--until", "translate"]) == 2
    assert "not a stage of --method evol" in capsys.readouterr().err
