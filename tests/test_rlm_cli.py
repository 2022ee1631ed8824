"""`rlmlab ask` end to end against a fake OpenAI-compatible server, and with nothing configured."""

import json

from rlmlab.cli import main
from rlmlab.llm.fakes import FakeOpenAIServer

PROVIDER_VARS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")


def test_ask_answers_through_a_base_url(tmp_path, monkeypatch, capsys):
    for name in PROVIDER_VARS:
        monkeypatch.delenv(name, raising=False)
    text = tmp_path / "notes.txt"
    text.write_text("line one\nthe code word is PLUM\nline three\n")

    def script(request):
        if not request.is_root:
            return "PLUM" if "PLUM" in request.last_user else "none"
        return ["```repl\nword = llm_query('find the code word: ' + context)\n```", "FINAL_VAR(word)"][request.step]

    with FakeOpenAIServer(script) as server:
        code = main(["ask", "--context", str(text), "--base-url", server.url, "--root", "local-model", "--json", "what is the code word?"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["answer"] == "PLUM" and out["usage"]["local-model"]["calls"] == 3


def test_ask_with_nothing_configured_says_what_to_set(tmp_path, monkeypatch, capsys):
    for name in PROVIDER_VARS:
        monkeypatch.delenv(name, raising=False)
    text = tmp_path / "c.txt"
    text.write_text("x")
    assert main(["ask", "--context", str(text), "q"]) == 2
    err = capsys.readouterr().err
    assert "OPENAI_API_KEY" in err and "ANTHROPIC_API_KEY" in err and "--base-url" in err


def test_ask_names_the_key_a_model_needs(tmp_path, monkeypatch, capsys):
    for name in PROVIDER_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    text = tmp_path / "c.txt"
    text.write_text("x")
    assert main(["ask", "--context", str(text), "--root", "claude-sonnet-4-5", "q"]) == 2
    assert "needs ANTHROPIC_API_KEY" in capsys.readouterr().err


def test_ask_missing_context_file(monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert main(["ask", "--context", "/no/such/file.txt", "q"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_ask_over_a_stored_context_writes_its_trace(tmp_path, monkeypatch, capsys):
    import pandas as pd

    from rlmlab.layout import write_context

    for name in PROVIDER_VARS:
        monkeypatch.delenv(name, raising=False)
    write_context("alpha\nbeta\ngamma\n" * 500, "mem://cli-ask", segment_bytes=2048, progress=False)
    script = ["```repl\nn = context.count('gamma')\n```", "FINAL_VAR(n)"]
    with FakeOpenAIServer(lambda request: script[request.step]) as server:
        code = main(["ask", "--context", "mem://cli-ask", "--base-url", server.url, "--root", "m",
                     "--trace-out", str(tmp_path / "trace"), "q"])
    assert code == 0 and capsys.readouterr().out.strip() == "500"
    assert len(pd.read_parquet(tmp_path / "trace" / "llm.parquet")) == 2
    assert len(pd.read_parquet(tmp_path / "trace" / "access.parquet")) >= 1
