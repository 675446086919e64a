"""docs/evol.md shows what docs/evol_languages.py computes, and names the whole taxonomy."""

import importlib.util
from pathlib import Path

from prompts import taxonomy

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "evol.md").read_text(encoding="utf-8")


def _script():
    spec = importlib.util.spec_from_file_location("evol_languages", ROOT / "docs" / "evol_languages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_language_table_is_current():
    script = _script()
    table = DOC.split("<!-- languages:start -->\n")[1].split("<!-- languages:end -->")[0]
    assert table.strip() == script.table().strip()
    assert len(script.M2LINGUAL) == len(set(script.M2LINGUAL)) == 58


def test_lid176_labels_are_read_from_the_model_file():
    labels = _script().lid176_labels()
    assert len(labels) == 176 and {"te", "hi", "en", "zh"} <= labels


def test_the_doc_names_every_task_operation_and_structure():
    for task in taxonomy.tasks():
        row = next(line for line in DOC.splitlines() if line.startswith(f"| `{task}` |"))
        assert all(f"`{op}`" in row for op in taxonomy.operations(task)), task
    for structure in taxonomy.structures():
        assert f"| `{structure}` |" in DOC
