"""The timeline: lanes packed from a run's trace, and a drawing of them."""

import matplotlib

matplotlib.use("Agg")

from rlmlab import RLM  # noqa: E402
from rlmlab.llm.fakes import ScriptedClient  # noqa: E402
from rlmlab.plots import timeline, timeline_rows  # noqa: E402
from rlmlab.trace import AccessEvent, LLMCallEvent, Trace  # noqa: E402


def call(start, latency, role="sub", depth=1, error=None):
    return LLMCallEvent(start, role, depth, "m", None, 1, 1, 0, latency, 0.0, False, error)


def test_overlapping_sub_calls_get_their_own_lanes_and_stalls_are_drawn():
    trace = Trace()
    for event in (call(0.0, 1.0, "root", 0), call(1.0, 0.5), call(1.1, 0.5), call(1.6, 0.2, error="Error")):
        trace.record(event)
    trace.record(AccessEvent(2.0, "slice", 0, 10, 10, 1, 0, 1, 1, 0.3, 0.4))
    trace.record(AccessEvent(2.5, "slice", 0, 10, 10, 1, 1, 0, 0, 0.0, 0.01))
    rows = timeline_rows(trace)
    assert [label for label, _, _ in rows] == ["root (depth 0)", "sub-calls 1", "sub-calls 2", "storage stalls"]
    assert rows[1][2] == [(1.0, 1.5, False), (1.6, 1.8, True)]
    assert rows[3][2] == [(2.1, 2.4, False)]


def test_timeline_of_a_real_run():
    code = "```repl\nparts = llm_query_batched(['a', 'b', 'c'])\n```\nFINAL_VAR(parts)"
    client = ScriptedClient("gpt-5-mini", lambda r: code if r.is_root else "x")
    result = RLM(client).completion("text", "q")
    ax = timeline(result.trace, title="run")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert "REPL cells" in labels and "root (depth 0)" in labels and any(l.startswith("sub-calls") for l in labels)
