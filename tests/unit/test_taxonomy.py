"""The evol taxonomy files (prompts/evol/) and their loader (prompts/taxonomy.py)."""

import shutil

import pytest

import prompts
from prompts import taxonomy

TASKS = {"open_qa", "closed_qa", "summarization", "classification", "sentiment", "ner", "extraction",
         "paraphrase", "rewriting", "translation", "mcq", "math", "reasoning", "code", "creative_writing",
         "dialogue", "brainstorming", "general_chat"}


def test_every_file_loads():
    names = taxonomy.validate_all()
    assert len(names) == len(set(names)) > 80


def test_the_tasks_of_the_issue_each_with_three_or_more_operations():
    assert TASKS <= set(taxonomy.tasks())
    for task in taxonomy.tasks():
        ops = taxonomy.operations(task)
        assert len(ops) >= 3, task
        for op in ops:
            loaded = taxonomy.load_operation(task, op)
            assert loaded.task == task and loaded.path == f"{task}/{loaded.name}"
            assert loaded.render("Telugu").strip()


def test_dialogue_structures():
    assert {"follow_up", "refine_answer", "deeper_dive", "clarification", "constraint_change",
            "topic_shift"} <= set(taxonomy.structures())


def test_templates_render_with_every_field_and_name_the_language():
    for name in taxonomy.templates():
        t = taxonomy.load_template(name)
        allowed, required = taxonomy.TEMPLATE_FIELDS[t.kind]
        system, user = t.messages({k: f"<{k}>" for k in allowed}, {k: f"DATA-{k}" for k in required})
        assert system["role"] == "system" and user["role"] == "user"
        assert "<language>" in system["content"]  # the prompt names the seed's language
        assert "DATA" not in system["content"]  # data only in the user message
        assert all(f"DATA-{k}" in user["content"] for k in required)
        assert "JSON" in system["content"]


def test_load_by_name_or_newest():
    assert taxonomy.load_template("evolve").name == taxonomy.load_template("evolve@1").name
    assert taxonomy.load_operation("math", "deepen").name == "deepen@1"
    assert taxonomy.load_structure("follow_up@1").id == "follow_up"
    with pytest.raises(taxonomy.PromptError, match="unknown operation"):
        taxonomy.load_operation("math", "nope")
    with pytest.raises(taxonomy.PromptError, match="version"):
        taxonomy.load_structure("follow_up@9")
    with pytest.raises(taxonomy.PromptError, match="unknown task"):
        taxonomy.operations("astrology")


def test_seed_labels_map_to_tasks():
    assert taxonomy.task_of("qa_context") == "closed_qa"  # the natural method's task prompts
    assert taxonomy.task_of("Question-Answering") == "open_qa"  # Aya collection task_type
    assert taxonomy.task_of(" named entity recognition ") == "ner"
    assert taxonomy.task_of("write_from_title") == "creative_writing"
    assert taxonomy.task_of("astrology") is None and taxonomy.task_of(None) is None


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A copy of prompts/evol to break, with the loader's caches cleared around the test."""
    root = tmp_path / "evol"
    shutil.copytree(taxonomy.ROOT, root)
    monkeypatch.setattr(taxonomy, "ROOT", root)
    for f in (prompts.versions, taxonomy.tasks, taxonomy._aliases, taxonomy.load_template, taxonomy.load_operation,
              taxonomy.load_structure):
        f.cache_clear()
    yield root
    for f in (prompts.versions, taxonomy.tasks, taxonomy._aliases, taxonomy.load_template, taxonomy.load_operation,
              taxonomy.load_structure):
        f.cache_clear()


def _edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize("old,new,match", [
    ("{task_description}", "{task_descripton}", "unknown placeholders"),
    ("{seed_response}", "seed_response", "must carry exactly"),
    ('"maxLength": 3000}', '"maxLength": null}', "maxLength"),
    ('schema: {"type": "object"', 'schema_: {"type": "object"', "unknown keys"),
    ("<instruction>\n  {seed_instruction}", "<instruction> {seed_instruction}", "alone between"),
])
def test_a_broken_template_fails_at_load(tree, old, new, match):
    _edit(tree / "templates" / "evolve@1.yaml", old, new)
    with pytest.raises(taxonomy.PromptError, match=match):
        taxonomy.load_template("evolve@1")


def test_a_template_without_schema_fails(tree):
    path = tree / "templates" / "user_turn@1.yaml"
    path.write_text("\n".join(line for line in path.read_text().splitlines() if not line.startswith("schema:")))
    with pytest.raises(taxonomy.PromptError, match="schema"):
        taxonomy.load_template("user_turn@1")


def test_an_operation_with_an_unknown_placeholder_fails(tree):
    _edit(tree / "step1" / "math" / "deepen@1.yaml", "several steps", "{steps} steps")
    with pytest.raises(taxonomy.PromptError, match="unknown placeholders"):
        taxonomy.load_operation("math", "deepen@1")


def test_a_new_version_is_picked_up_as_newest(tree):
    (tree / "step2" / "follow_up@2.yaml").write_text(
        "kind: structure\ndescription: d\nguidance: Ask a follow-up in {language}.\n")
    assert taxonomy.load_structure("follow_up").name == "follow_up@2"
    assert taxonomy.load_structure("follow_up").render("Hindi") == "Ask a follow-up in Hindi."


def test_a_folder_for_an_unknown_task_fails_validation(tree):
    (tree / "step1" / "astrology").mkdir()
    with pytest.raises(taxonomy.PromptError, match="unknown tasks"):
        taxonomy.validate_all()
