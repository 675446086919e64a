import json
from collections import Counter

import pytest

import prompts
from pipeline.config import GenerateConfig
from transforms import generate

CFG = GenerateConfig()
RESPONSE = ("Everyone has the right to education. Education shall be free, at least in the "
            "elementary and fundamental stages, and elementary education shall be compulsory.")


def test_every_task_prompt_loads_with_a_schema():
    for name in CFG.tasks:
        prompt = prompts.load(name)
        assert prompt.kind == "task" and prompt.schema["type"] == "object"
        assert "{response}" in prompt.template
    judge = prompts.load("judge@1")
    assert judge.kind == "judge" and judge.template.index("additive") < judge.template.index("{response}")
    with pytest.raises(KeyError):
        prompts.load("nope@1")


def test_task_draw_is_reproducible_and_follows_weights():
    tasks = {"open_ended@1": 3.0, "mcq@1": 1.0}
    draws = [generate.draw_task(f"id{i}", tasks, seed=0) for i in range(4000)]
    assert draws == [generate.draw_task(f"id{i}", tasks, seed=0) for i in range(4000)]
    share = Counter(draws)["open_ended@1"] / len(draws)
    assert 0.72 < share < 0.78
    assert draws != [generate.draw_task(f"id{i}", tasks, seed=1) for i in range(4000)]


def test_request_bounds_every_free_text_field():
    record = {"id": "x", "response_en": RESPONSE}
    request = generate.generate_request(record, prompts.load("mcq@1"), GenerateConfig(max_instruction_chars=50))
    props = request.schema["properties"]
    assert props["question"]["maxLength"] == 50
    assert all(v["maxLength"] == 50 for v in props["options"]["properties"].values())
    assert props["answer"]["enum"] == ["A", "B", "C", "D"]
    assert request.seed == generate.generate_request(record, prompts.load("mcq@1"), CFG).seed


@pytest.mark.parametrize(
    "answer, prompt, reason",
    [
        ("not json", "open_ended@1", generate.LLM_UNPARSEABLE),
        ('["a list"]', "open_ended@1", generate.LLM_UNPARSEABLE),
        ('{"instruction": "  "}', "open_ended@1", generate.INSTRUCTION_EMPTY),
        (json.dumps({"instruction": "Repeat: " + RESPONSE}), "open_ended@1", generate.INSTRUCTION_COPIES_RESPONSE),
        (json.dumps({"instruction": "x" * 5000}), "open_ended@1", generate.INSTRUCTION_TOO_LONG),
        ('{"question": "Q?", "options": {"A": "a", "B": "b", "C": "c"}, "answer": "A"}', "mcq@1", generate.MCQ_INVALID),
        ('{"question": "Q?", "options": {"A": "a", "B": "b", "C": "c", "D": ""}, "answer": "A"}', "mcq@1", generate.MCQ_INVALID),
        ('{"question": "Q?", "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "answer": "E"}', "mcq@1", generate.MCQ_INVALID),
    ],
)
def test_invalid_answers_are_rejected_with_reasons(answer, prompt, reason):
    assert generate.parse_instruction(answer, prompts.load(prompt), RESPONSE, CFG) == (None, reason, {})


def test_valid_answers():
    good = json.dumps({"instruction": "Why should basic schooling cost nothing?"})
    assert generate.parse_instruction(good, prompts.load("explain@1"), RESPONSE, CFG) == (
        "Why should basic schooling cost nothing?", None, {})
    mcq = json.dumps({"question": "Which stage is free?", "options": {"A": "All", "B": "Elementary", "C": "None", "D": "Higher"}, "answer": "B"})
    instruction, reason, detail = generate.parse_instruction(mcq, prompts.load("mcq@1"), RESPONSE, CFG)
    assert reason is None and detail == {"answer": "B"}
    assert instruction.splitlines() == ["Which stage is free?", "A. All", "B. Elementary", "C. None", "D. Higher"]


@pytest.mark.parametrize(
    "output, score",
    [
        ("Relevant and complete.\nScore: 4", 4),
        ("Good.\n**Score: 5**", 5),
        ("Fine.\nScore: 0.", 0),
        ('The response says "Score: 5" but is off topic.\nScore: 1', 1),
        ('It ends by quoting "Score: 5" and nothing else', None),
        ("Score: 3 is what I would give, but", None),
        ("Score: 7", None),
        ("", None),
        (None, None),
    ],
)
def test_judge_score_is_read_from_the_end_only(output, score):
    assert generate.parse_score(output) == score


def test_judge_threshold_applies_lambda_to_the_stored_score():
    record = {"scores": {"judge": 2}}
    assert generate.judge_threshold((record, None), 3) == (record, generate.JUDGE_LOW)
    assert generate.judge_threshold((record, None), 2) == (record, None)
    assert generate.judge_threshold((record, None), None) == (record, None)
    assert generate.judge_threshold((record, "llm_error", {"error": "x"}), 3) == (record, "llm_error", {"error": "x"})
