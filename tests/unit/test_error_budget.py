"""The line a stage over its error budget fails with: how many, the first distinct errors with
their counts, and the vLLM server's log (``transforms/records/checkpoint.py``)."""

import pytest

from transforms.records import checkpoint


def reject(error, log=None):
    detail = {"error": error, "attempts": 4, **({"server_log": log} if log else {})}
    return {"id": "x", "lang": "tel", "stage": "generate", "reason": "llm_error", "detail": detail}


def test_the_budget_line_quotes_the_first_errors_their_counts_and_the_server_log():
    watch = checkpoint._WatchErrorBudget("generate", 0.05)
    watch.setup()
    totals = {"tel": 60}
    seen = [reject("APITimeoutError: Request timed out.", "/out/logs/vllm-a.log"),
            reject("InternalServerError: Error code: 500 - boom", "/out/logs/vllm-a.log"),
            reject("APITimeoutError: Request timed out.", "/out/logs/vllm-b.log")]
    for r in seen:
        watch.process(r, totals)  # 3 of 60: within 5%
    watch.process({**reject("x"), "reason": "llm_unparseable"}, totals)  # a verdict, not counted
    with pytest.raises(checkpoint.ErrorBudgetExceeded) as failure:
        watch.process(reject("APIConnectionError: Connection error."), totals)
    assert str(failure.value) == (
        "generate (tel): at least 4 of 60 records (6.7%) ended in llm_error (first errors: 2 x APITimeoutError: "
        "Request timed out.; 1 x InternalServerError: Error code: 500 - boom; 1 other), over the error budget of "
        "5% (max_transient_error_share); the stage is not marked complete; vLLM server log: /out/logs/vllm-a.log, "
        "/out/logs/vllm-b.log")
