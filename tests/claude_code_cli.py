"""The real Claude Code CLI under test: whether it can run here, and an environment of its own.

Used by the tests that start the bundled CLI (through the Agent SDK) against the fake
Anthropic server; its fixtures (registered in conftest.py) keep the machine's Claude Code
settings out and the user's ~/.claude untouched.
"""

import pytest

from rlmlab.llm import claude_code_problem

KEY = "sk-ant-api03-test-key-for-the-fake-server-0123456789"


CLI_PROBLEM = claude_code_problem()
needs_cli = pytest.mark.skipif(CLI_PROBLEM is not None, reason=str(CLI_PROBLEM))

# Whatever the machine's environment configures for Claude Code must not reach the test CLI.
FOREIGN_VARS = (
    "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "ANTHROPIC_MODEL", "CLAUDE_CODE_OAUTH_TOKEN",
    "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX", "CLAUDE_CODE_USE_FOUNDRY", "CLAUDECODE",
    "OPENAI_API_KEY", "OPENAI_BASE_URL",
)  # fmt: skip


@pytest.fixture
def without_claude_settings(monkeypatch):
    """The test modules that start the CLI use this for every test (`pytestmark`)."""
    for name in FOREIGN_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory):
    """A HOME and CLAUDE_CONFIG_DIR of the tests' own: the real user's ~/.claude stays untouched."""
    return tmp_path_factory.mktemp("claude-home")


def cli_env(server, home, key=KEY):
    return {
        "ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": key,
        "HOME": str(home), "CLAUDE_CONFIG_DIR": str(home / ".claude"),
    }  # fmt: skip
