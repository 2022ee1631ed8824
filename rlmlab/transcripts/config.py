"""Where transcripts go and where local state lives: the store URI, the spool, Claude Code's folders.

The store comes from an explicit argument, else `RLMLAB_STORE`, else the `store` field of the
config file (`RLMLAB_CONFIG`, default `~/.rlmlab/config.json`, which may also name an
`endpoint_url` for R2 or a local S3, and the `root_model` / `sub_model` / `base_url` that
precompile with). Hooks run with Claude Code's environment, so a config
file is the way to set the store once for every session.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import RlmlabError


class ConfigError(RlmlabError):
    """No store is configured, or the config file cannot be read."""


@dataclass(frozen=True)
class StoreSettings:
    uri: str
    endpoint_url: str | None = None


def rlmlab_home() -> Path:
    return Path(os.environ.get("RLMLAB_HOME") or Path.home() / ".rlmlab")


def config_path() -> Path:
    return Path(os.environ.get("RLMLAB_CONFIG") or rlmlab_home() / "config.json")


def spool_dir() -> Path:
    return Path(os.environ.get("RLMLAB_SPOOL_DIR") or rlmlab_home() / "spool")


def load_config() -> dict:
    """The config file's fields ({} when there is none); a clear error when it is unreadable."""
    path = config_path()
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read the rlmlab config {path}: {e}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"the rlmlab config {path} must be a JSON object like {{\"store\": \"s3://bucket/team\"}}")
    return config


def store_settings(explicit: str | None = None) -> StoreSettings:
    config = load_config()
    uri = explicit or os.environ.get("RLMLAB_STORE") or config.get("store")
    if not uri:
        raise ConfigError(f"no store configured: pass --to URI, set RLMLAB_STORE, or put {{\"store\": URI}} in {config_path()}")
    return StoreSettings(uri, config.get("endpoint_url") or None)


def model_settings() -> dict:
    """Models for precompiling, from the config file (`root_model`, `sub_model`, `base_url`); keys come from the environment."""
    config = load_config()
    return {"root": config.get("root_model"), "sub": config.get("sub_model"), "base_url": config.get("base_url")}


def claude_dir() -> Path:
    return Path(os.environ.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude")


def project_transcripts_dir(cwd: str | os.PathLike) -> Path:
    """`~/.claude/projects/<cwd with every non-alphanumeric character replaced by '-'>` (GUIDE §5)."""
    return claude_dir() / "projects" / re.sub(r"[^A-Za-z0-9]", "-", str(Path(cwd).resolve()))
