"""The model-call cache: only misses reach the model, outputs survive the process, a file cut
short by a killed writer costs only its broken line."""

from transforms.records.cache import CallCache, read_entries


class Model:
    def __init__(self):
        self.calls: list[list] = []

    def __call__(self, items):
        self.calls.append(list(items))
        return [item.upper() for item in items]


def test_only_misses_are_computed_and_a_new_process_finds_them(tmp_path):
    model = Model()
    cache = CallCache(str(tmp_path), "translate", {"model": "m"})
    assert cache.run(["a", "b"], model) == ["A", "B"]
    assert cache.run(["b", "c", "a"], model) == ["B", "C", "A"]
    assert model.calls == [["a", "b"], ["c"]]
    again = CallCache(str(tmp_path), "translate", {"model": "m"})  # another process or run
    assert again.run(["c", "a", "b"], model) == ["C", "A", "B"]
    assert len(model.calls) == 2


def test_other_parameters_or_namespace_do_not_share_outputs(tmp_path):
    model = Model()
    CallCache(str(tmp_path), "translate", {"model": "m"}).run(["a"], model)
    CallCache(str(tmp_path), "translate", {"model": "other"}).run(["a"], model)
    CallCache(str(tmp_path), "backtranslate", {"model": "m"}).run(["a"], model)
    assert model.calls == [["a"], ["a"], ["a"]]


def test_outputs_not_kept_are_returned_but_asked_again(tmp_path):
    calls = []

    def flaky(items):
        calls.append(list(items))
        return [{"text": None, "error": "timeout"} if item == "x" else {"text": item, "error": None} for item in items]

    cache = CallCache(str(tmp_path), "generate", {})
    keep = lambda answer: answer["error"] is None  # noqa: E731
    assert cache.run(["x", "y"], flaky, keep)[0]["error"] == "timeout"
    assert cache.run(["x", "y"], flaky, keep)[1] == {"text": "y", "error": None}
    assert calls == [["x", "y"], ["x"]]


def test_a_line_cut_short_is_skipped(tmp_path):
    cache = CallCache(str(tmp_path), "qe", {})
    cache.run(["a", "b"], lambda items: [1.0, 2.0])
    (part,) = (tmp_path / "qe").glob("*.jsonl")
    part.write_text(part.read_text()[:-5])  # the writer was killed mid-line
    assert list(read_entries(str(part)).values()) == [1.0]


def test_no_directory_means_no_cache():
    model = Model()
    cache = CallCache(None, "translate", {})
    cache.run(["a"], model)
    cache.run(["a"], model)
    assert model.calls == [["a"], ["a"]]
