"""`rlmlab ask --context URI "question"`: one RLM run against a real provider, from the shell.

The provider follows from what is set: `--base-url` / OPENAI_BASE_URL (any OpenAI-compatible
server), OPENAI_API_KEY, or ANTHROPIC_API_KEY; `--root claude-agent:<model>` runs through the
user's Claude Code, which brings its own auth. With none of them, it says exactly what to set.
`--engine agent` makes the root a Claude agent that drives the REPL with tools (rlmlab.rlm.agent).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..errors import RlmlabError, RunStopped

DEFAULT_MODELS = {"openai": ("gpt-5", "gpt-5-mini"), "anthropic": ("claude-sonnet-4-5", "claude-haiku-4-5")}
NOTHING_SET = """\
rlmlab ask needs a language model, and none is configured. Set one of:
  export OPENAI_API_KEY=sk-...          # OpenAI (root gpt-5, sub gpt-5-mini by default)
  export ANTHROPIC_API_KEY=sk-ant-...   # Anthropic (root claude-sonnet-4-5, sub claude-haiku-4-5)
  --base-url http://host:port/v1 --root MODEL   (or export OPENAI_BASE_URL=...)
                                        # an OpenAI-compatible server: vLLM, Ollama, LM Studio, OpenRouter
  --root claude-agent:sonnet            # through your Claude Code login (subscription, its API key,
                                        # Bedrock or Vertex); needs pip install 'rlmlab[agent]'"""


def add_commands(subparsers) -> None:
    ask = subparsers.add_parser("ask", help="answer a question about a context with an RLM")
    ask.add_argument("question")
    ask.add_argument("--context", required=True, help="a context URI (s3://, file://, mem://) or a local text file")
    ask.add_argument("--root", help="root model (default by provider); claude-agent:<model> runs through Claude Code")
    ask.add_argument("--sub", help="sub-call model (default depends on the provider; --root when only that is given)")
    ask.add_argument("--base-url", help="an OpenAI-compatible server (vLLM, Ollama, LM Studio, OpenRouter)")
    ask.add_argument(
        "--engine", choices=["text", "agent"], default="text",
        help="text: the root writes ```repl blocks (any model); agent: the root is a Claude agent in Claude Code "
        "that calls python / final_answer tools (--root claude-agent[:model], the default then)",
    )  # fmt: skip
    ask.add_argument("--max-iterations", type=int, default=30)
    ask.add_argument("--max-depth", type=int, default=1)
    ask.add_argument("--max-concurrency", type=int, default=16)
    ask.add_argument("--budget", type=float, help="stop when this many USD are spent (sub-calls included)")
    ask.add_argument("--timeout", type=float, help="stop after this many seconds")
    ask.add_argument("--repl", choices=["inprocess", "isolated"], default="inprocess")
    ask.add_argument("--endpoint-url", help="S3 endpoint for s3:// contexts (R2, MinIO, the embedded simulator)")
    ask.add_argument("--trace-out", help="write the run's trace (one Parquet file per event kind) to this directory")
    ask.add_argument("--json", action="store_true", help="print the answer, usage and cost as JSON")
    ask.set_defaults(func=run_ask)


def choose_models(args) -> tuple[str, str, str | None]:
    """(root, sub, base_url) from flags and environment, or MissingCredentials saying what to set."""
    from ..errors import MissingCredentials
    from ..llm import runs_in_claude_code

    base_url = args.base_url or os.environ.get("OPENAI_BASE_URL")
    if base_url:
        if not args.root:
            raise MissingCredentials(f"--base-url {base_url} is set: name the model it serves with --root MODEL")
        return args.root, args.sub or args.root, base_url
    has_openai, has_anthropic = bool(os.environ.get("OPENAI_API_KEY")), bool(os.environ.get("ANTHROPIC_API_KEY"))
    wanted = args.root or ""
    if runs_in_claude_code(wanted):
        root, sub = wanted, args.sub or wanted
    elif not (has_openai or has_anthropic):
        raise MissingCredentials(NOTHING_SET)
    else:
        provider = "anthropic" if wanted.startswith("claude") or (not wanted and not has_openai) else "openai"
        root = args.root or DEFAULT_MODELS[provider][0]
        sub = args.sub or (DEFAULT_MODELS[provider][1] if not args.root else root)
    for model in (root, sub):
        if runs_in_claude_code(model):
            continue  # Claude Code signs in on its own
        needs = "ANTHROPIC_API_KEY" if model.startswith("claude") else "OPENAI_API_KEY"
        if not os.environ.get(needs):
            raise MissingCredentials(f"model {model!r} needs {needs}; set it, or choose a model of the provider whose key is set")
    return root, sub, None


def open_any_context(uri: str, endpoint_url: str | None = None):
    """A URI through rlmlab.context (when present); a local text file as a plain str."""
    path = Path(uri)
    if "://" not in uri and path.is_file():
        return path.read_text(encoding="utf-8", errors="replace")
    try:
        from ..context import open_context
    except ImportError:
        open_context = None
    if "://" not in uri:
        if not path.exists():
            raise FileNotFoundError(f"--context {uri!r}: no such file, and not a URI (s3://, file://, mem://)")
        uri = path.resolve().as_uri()
    if open_context is None:
        raise RlmlabError(f"--context {uri!r} is a storage URI, and this build has no rlmlab.context to open it")
    return open_context(uri, endpoint_url=endpoint_url)


def run_ask(args) -> int:
    from ..llm import CLAUDE_AGENT, client_for, runs_in_claude_code
    from .engine import RLM

    def client(model: str, base_url: str | None):
        return client_for(model, base_url=None if runs_in_claude_code(model) else base_url)

    try:
        if args.engine == "agent":
            args.root = args.root or CLAUDE_AGENT
            if not runs_in_claude_code(args.root):
                raise ValueError(f"--engine agent runs the root in Claude Code: --root claude-agent[:model], not {args.root!r}")
        root_model, sub_model, base_url = choose_models(args)
        context = open_any_context(args.context, args.endpoint_url)
        settings = dict(max_iterations=args.max_iterations, max_depth=args.max_depth, max_concurrency=args.max_concurrency,
                        budget_usd=args.budget, timeout_s=args.timeout, repl=args.repl)  # fmt: skip
        if args.engine == "agent":
            from .agent import AgentRLM

            sub = client(sub_model, base_url)
            rlm = AgentRLM(sub, model=root_model.partition(":")[2] or None, **settings)
        else:
            root = client(root_model, base_url)
            sub = root if sub_model == root_model else client(sub_model, base_url)
            rlm = RLM(root, sub, **settings)
        result = rlm.completion(context, args.question)
    except RunStopped as stopped:
        print(f"rlmlab ask: stopped: {stopped}", file=sys.stderr)
        if stopped.partial_answer:
            print(f"partial answer:\n{stopped.partial_answer}")
        return 3
    except (RlmlabError, FileNotFoundError, ValueError, ImportError) as error:  # ImportError: an extra not installed
        print(f"rlmlab ask: {error}", file=sys.stderr)
        return 2
    if args.trace_out:
        out = Path(args.trace_out)
        out.mkdir(parents=True, exist_ok=True)
        for kind, frame in result.trace.to_pandas().items():
            frame.to_parquet(out / f"{kind}.parquet", index=False)
    if args.json:
        usage = {model: vars(totals) for model, totals in result.usage.items()}
        print(json.dumps({"answer": result.answer, "iterations": result.iterations, "ended_by": result.ended_by,
                          "cost_usd": result.cost_usd, "elapsed_s": result.elapsed_s, "usage": usage}, indent=2))  # fmt: skip
    else:
        print(result.answer)
        print(f"[{result.iterations} iterations, ${result.cost_usd:.4f}, {result.elapsed_s:.1f} s]", file=sys.stderr)
    return 0
