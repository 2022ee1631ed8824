"""The transcript side of the CLI: `rlmlab transcripts parse|upload|flush|precompile|hook|install-hook`, `rlmlab data synth`."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def add_commands(subparsers) -> None:
    transcripts = subparsers.add_parser("transcripts", help="Claude Code session transcripts: parse, upload to the team context, hooks")
    actions = transcripts.add_subparsers(dest="action", required=True)
    parse = actions.add_parser("parse", help="parse session JSONL files; print their counts, or render them")
    parse.add_argument("paths", nargs="+", type=Path, help="session .jsonl files (directories: every *.jsonl inside, recursively)")
    shape = parse.add_mutually_exclusive_group()
    shape.add_argument("--text", action="store_true", help="print each session in the SESSION METADATA text format")
    shape.add_argument("--json", action="store_true", help="print each session as JSON")
    parse.add_argument("--redact", action="store_true", help="redact secrets in what is printed")
    parse.set_defaults(func=_parse)

    upload = actions.add_parser("upload", help="append sessions (redacted) to the team context in a store")
    upload.add_argument("session", nargs="?", help="a session id, or the path of a session .jsonl")
    which = upload.add_mutually_exclusive_group()
    which.add_argument("--latest", action="store_true", help="the most recently changed session of the project")
    which.add_argument("--all", action="store_true", help="every session of the project (or of --from)")
    upload.add_argument("--to", help="store URI (default: RLMLAB_STORE, else the rlmlab config file)")
    upload.add_argument("--from", dest="source", type=Path, help="transcripts directory (default: this project's under ~/.claude/projects)")
    upload.add_argument("--cwd", type=Path, default=None, help="project directory whose transcripts to use (default: here)")
    upload.set_defaults(func=_upload)

    flush = actions.add_parser("flush", help="upload the sessions the hooks queued while the store was unreachable")
    flush.add_argument("--wait", action="store_true", help="wait for a running flusher instead of leaving the work to it")
    flush.add_argument("--settle", type=float, default=0.0, help="seconds to wait before reading transcripts (default 0)")
    flush.set_defaults(func=_flush)

    precompile = actions.add_parser("precompile", help="digest new sessions and rewrite compiled/briefing.md with an RLM")
    precompile.add_argument("--to", help="store URI (default: RLMLAB_STORE, else the rlmlab config file)")
    precompile.add_argument("--root", help="root model (default: config root_model, else the provider's default)")
    precompile.add_argument("--sub", help="sub-call model, which writes the digests")
    precompile.add_argument("--base-url", help="an OpenAI-compatible server")
    precompile.add_argument("--force", action="store_true", help="rewrite the briefing even if it reflects the newest version")
    precompile.set_defaults(func=_precompile)

    hook = actions.add_parser("hook", help="Claude Code hook entry points (read the hook JSON on stdin)")
    hook.add_argument("event", choices=["session-end", "session-start"])
    hook.set_defaults(func=_hook)

    install = actions.add_parser("install-hook", help="install the SessionEnd/SessionStart hooks and the /upload-context skill")
    scope = install.add_mutually_exclusive_group()
    scope.add_argument("--project", dest="scope", action="store_const", const="project", help="this project's .claude/settings.json (default)")
    scope.add_argument("--user", dest="scope", action="store_const", const="user", help="~/.claude/settings.json")
    install.add_argument("--remove", action="store_true", help="remove what an earlier install added, and nothing else")
    install.set_defaults(func=_install, scope="project")

    data = subparsers.add_parser("data", help="generate data sets for experiments")
    kinds = data.add_subparsers(dest="kind", required=True)
    synth = kinds.add_parser("synth", help="synthetic multi-developer Claude Code sessions with planted facts and questions")
    synth.add_argument("--size", default="50MB", help="total JSONL size, e.g. 50MB, 500kB (default: 50MB)")
    synth.add_argument("--developers", type=int, default=5)
    synth.add_argument("--needles", type=int, default=20, help="planted facts, each with a question in questions.jsonl")
    synth.add_argument("--seed", type=int, default=1)
    synth.add_argument("--out", type=Path, required=True, help="output directory (sessions, developers.json, questions.jsonl)")
    synth.set_defaults(func=_synth)


def _session_files(paths: list[Path]) -> list[Path]:
    """Files as given; in directories, every session file (not subagent files, not other JSONL such as questions.jsonl)."""
    from .claude_code import first_session_id

    files = []
    for path in paths:
        if path.is_dir():
            files.extend(
                p
                for p in sorted(path.rglob("*.jsonl"))
                if "subagents" not in p.parts and not p.name.startswith("agent-") and first_session_id(p) is not None
            )
        elif path.is_file():
            files.append(path)
        else:
            raise SystemExit(f"rlmlab transcripts parse: no such file or directory: {path}")
    return files


def _parse(args) -> int:
    from .claude_code import load
    from .redact import redact

    for path in _session_files(args.paths):
        session = load(path)
        if args.text or args.json:
            out = session.to_text() if args.text else session.to_json(indent=2)
            sys.stdout.write((redact(out) if args.redact else out) + ("\n" if args.json else ""))
        else:
            print(json.dumps({"path": str(path), **{k: v for k, v in session.stats().items() if k != "entries"}}))
    return 0


def _synth(args) -> int:
    from .synth import parse_size, synthesize

    try:
        size = parse_size(args.size)
        summary = synthesize(args.out, size=size, developers=args.developers, needles=args.needles, seed=args.seed)
    except ValueError as error:
        raise SystemExit(f"rlmlab data synth: {error}") from None
    print(json.dumps(summary))
    return 0


def _resolve_sessions(args) -> list:
    """The sessions `upload` means: by id or path, the latest, or all, from --from or this project's folder."""
    from .claude_code import load
    from .config import claude_dir, project_transcripts_dir
    from .synth import session_paths

    if args.session and Path(args.session).is_file():
        return [load(Path(args.session))]
    source = args.source or project_transcripts_dir(args.cwd or Path.cwd())
    if not source.is_dir():
        raise SystemExit(f"rlmlab transcripts upload: no transcripts folder {source} (use --from DIR)")
    if (source / "developers.json").is_file():  # a synthetic corpus: identities come with it
        candidates = session_paths(source)
    else:
        candidates = [(p, None) for p in _session_files([source])]
    if args.session:
        matches = [(p, i) for p, i in candidates if p.stem == args.session]
        if not matches:
            matches = [(p, None) for p in sorted((claude_dir() / "projects").glob(f"*/{args.session}.jsonl"))]
        if not matches:
            raise SystemExit(f"rlmlab transcripts upload: no session {args.session} in {source} or {claude_dir() / 'projects'}")
        candidates = matches[:1]
    elif args.latest:
        if not candidates:
            raise SystemExit(f"rlmlab transcripts upload: no sessions in {source}")
        candidates = [max(candidates, key=lambda c: c[0].stat().st_mtime)]
    elif not args.all:
        raise SystemExit("rlmlab transcripts upload: name a SESSION, or pass --latest or --all")
    return [load(p, identity=i) for p, i in candidates]


def _upload(args) -> int:
    from ..stores import open_store
    from .config import ConfigError, store_settings
    from .upload import upload_sessions

    try:
        settings = store_settings(args.to)
    except ConfigError as error:
        raise SystemExit(f"rlmlab transcripts upload: {error}") from None
    sessions = _resolve_sessions(args)
    result = upload_sessions(sessions, open_store(settings.uri, endpoint_url=settings.endpoint_url))
    print(json.dumps({"store": settings.uri, "version": result.version, "added": len(result.added), "replaced": len(result.replaced),
                      "unchanged": len(result.unchanged), "conflicts": result.conflicts}))
    return 0


def _flush(args) -> int:
    from .spool import flush

    time.sleep(max(0.0, args.settle))
    report = flush(wait=args.wait)
    print(json.dumps({"sent": report.sent, "failed": report.failed, "dropped": report.dropped, "busy": report.busy}))
    return 1 if report.failed else 0


def _hook(args) -> int:
    from .config import ConfigError
    from .hooks import read_payload, session_end, session_start

    try:
        payload = read_payload(sys.stdin.read())
        if args.event == "session-end":
            session_end(payload)
        else:
            output = session_start(payload)
            if output:
                sys.stdout.write(output + "\n")
    except ConfigError as error:
        if args.event == "session-start":
            return 0  # nothing configured, nothing to inject: not worth an error at every start
        print(f"rlmlab transcripts hook {args.event}: {error}", file=sys.stderr)
        return 1
    except ValueError as error:
        print(f"rlmlab transcripts hook {args.event}: {error}", file=sys.stderr)
        return 1
    return 0


def _install(args) -> int:
    from .install import install, uninstall

    try:
        paths = uninstall(args.scope) if args.remove else install(args.scope)
    except ValueError as error:
        raise SystemExit(f"rlmlab transcripts install-hook: {error}") from None
    verb = "removed from" if args.remove else "installed in"
    for path in paths:
        print(f"{verb} {path}")
    if not paths:
        print("nothing to remove")
    return 0


def _precompile(args) -> int:
    from ..errors import MissingCredentials
    from ..rlm.engine import RLM
    from ..stores import open_store
    from .config import ConfigError, model_settings, store_settings
    from .precompile import models_from_settings, precompile

    try:
        settings = store_settings(args.to)
        configured = model_settings()
    except ConfigError as error:
        raise SystemExit(f"rlmlab transcripts precompile: {error}") from None
    chosen = {k: getattr(args, k) or configured[k] for k in ("root", "sub", "base_url")}
    try:
        root, sub = models_from_settings(**chosen)
    except MissingCredentials as error:
        print(f"rlmlab transcripts precompile: skipped, no model is configured.\n{error}", file=sys.stderr)
        return 0
    report = precompile(open_store(settings.uri, endpoint_url=settings.endpoint_url), RLM(root, sub), force=args.force)
    print(json.dumps({"version": report.version, "digested": len(report.digested), "reused": report.reused,
                      "briefing_chars": report.briefing_chars, "up_to_date": report.up_to_date}))
    return 0
