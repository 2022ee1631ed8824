"""Replace secrets in text with `[REDACTED:<kind>]` before anything leaves the machine.

Each rule is a precise pattern (provider key formats after gitleaks' rule set, MIT) guarded
by keywords: a rule's regex runs only when one of its keywords occurs in the text, which is
what keeps whole-transcript redaction fast. Generic rules (assignments, .env blocks, URL
passwords, bearer tokens) add value checks so git SHAs, UUIDs, lockfile hashes and ordinary
code stay as they are. `redact` is a plain function: transcripts and cassettes share it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


def marker(kind: str) -> str:
    return f"[REDACTED:{kind}]"


@dataclass(frozen=True)
class Rule:
    """One kind of secret. `group` is the part replaced (0: the whole match); `accept` vetoes weak matches."""

    kind: str
    keywords: tuple[str, ...]
    pattern: re.Pattern
    group: int = 0
    accept: Callable[[str], bool] | None = None

    def applies(self, text: str) -> bool:
        """No keywords: the pattern starts with a literal the regex engine already searches for fast."""
        return not self.keywords or any(keyword in text for keyword in self.keywords)

    def apply(self, text: str) -> str:
        return self.pattern.sub(self.replace, text)

    def replace(self, match: re.Match) -> str:
        secret = match.group(self.group)
        if not secret or (self.accept is not None and not self.accept(secret)):
            return match.group(0)
        whole, start = match.group(0), match.start(self.group) - match.start()
        return whole[:start] + marker(self.kind) + whole[start + len(secret) :]


# -- value checks for the generic rules ------------------------------------------------------

_PLACEHOLDER = re.compile(
    r"(?i)^(?:x+|\*+|\.+|-+|<[^>]*>|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|\{\{.*\}\}|%\(?\w*\)?s?|"
    r"(?:your|my|the|some|example|dummy|fake|test|sample|placeholder|changeme|change_me)(?:[-_][-_a-z0-9]*)?|"
    r"password|passwd|secret|token|none|null|nil|true|false|undefined|redacted|\[redacted:.*)$"
)
_CODE_LIKE = re.compile(r"^[A-Za-z_][A-Za-z_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")  # identifiers / attribute chains


_NAME_LIKE = re.compile(r"^(?:[A-Za-z]+(?:[_.-][A-Za-z]+)+|[A-Z]+)$")  # access_token, OPENAI_API_KEY, Bearer


def _secret_value(value: str, quoted: bool) -> bool:
    """A value assigned to a password/secret/token-named key that looks like a real secret.

    Bare values must not read as code (identifiers, attribute chains); quoted ones may be plain
    words (a passphrase) but not key names or placeholders.
    """
    if len(value) < 6 or value.isdigit() or "REDACTED" in value or _PLACEHOLDER.match(value):
        return False
    if (_NAME_LIKE if quoted else _CODE_LIKE).match(value):
        return _random_letters(value)
    return True


def _random_letters(value: str) -> bool:
    """Letters-only values that are not names: long, no separators, case flipping like random text."""
    if len(value) < 12 or not value.isalpha():
        return False
    upper = sum(c.isupper() for c in value) / len(value)
    return 0.2 <= upper <= 0.8


_PLAIN_CONFIG = re.compile(r"^(?:[a-z]+|[a-z][a-z0-9.-]*\.[a-z]{2,}|\.?/[\w./-]*|[a-z][a-z0-9+.-]*://[^@]*)$")  # words, hosts, paths, URLs


def _env_value(value: str) -> bool:
    """Values in a .env block, except what is plainly configuration: numbers, words, hosts, paths, URLs without credentials."""
    bare = value.strip("\"'")
    if len(bare) < 8 or bare.isdigit() or "REDACTED" in bare:
        return False
    return not _PLACEHOLDER.match(bare) and not _PLAIN_CONFIG.match(bare)


def _token_like(value: str) -> bool:
    """Bearer/basic credentials: long and mixing letters with digits (so 'Bearer authentication' is prose)."""
    if len(value) < 16 or "REDACTED" in value or not any(c.isalpha() for c in value):
        return False
    return any(c.isdigit() for c in value) or _random_letters(value)


def _url_password(value: str) -> bool:
    return not _PLACEHOLDER.match(value) and "REDACTED" not in value


# -- the rule set ------------------------------------------------------------------------------

_E = r"(?![A-Za-z0-9_-])"  # right boundary that also treats '-' and '_' as part of a token


def _start(prefix: str) -> str:
    """`prefix` not preceded by a token character. The lookbehind sits after the literal so the
    regex engine can still search for the literal prefix (a leading lookbehind disables that)."""
    return prefix + r"(?<![A-Za-z0-9_-]" + prefix + ")"


def _rule(kind, keywords, regex, group=0, accept=None, flags=0) -> Rule:
    return Rule(kind, tuple(keywords), re.compile(regex, flags), group, accept)


PROVIDER_RULES: tuple[Rule, ...] = (
    # Blocks first: a private key or a JWT can contain substrings other rules would half-match.
    _rule(
        "private-key",
        ["PRIVATE KEY-----"],
        r"-----BEGIN[ A-Z0-9]{0,32}PRIVATE KEY-----(?:.*?-----END[ A-Z0-9]{0,32}PRIVATE KEY-----|[A-Za-z0-9+/=\s\\]*)",
        flags=re.DOTALL,
    ),
    _rule("jwt", ["eyJ"], _start('eyJ') + r"[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}" + _E),
    _rule("anthropic-api-key", ["sk-ant-"], _start('sk-ant-') + r"[a-z]{2,8}\d{2}-[A-Za-z0-9_-]{32,}" + _E),
    _rule(
        "openai-api-key",
        ["sk-"],
        _start('sk-') + r"(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}|[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,})" + _E,
    ),
    _rule("aws-access-key-id", [], _start("A") + r"(?:KIA|SIA|BIA|CCA)[A-Z2-7]{16}\b"),
    _rule(
        "aws-secret-access-key",
        ["ecret", "ECRET"],
        r"(?:ecret|ECRET)_?(?:[Aa]ccess|ACCESS)_?(?:[Kk]ey|KEY)[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])",
        group=1,
    ),
    _rule("google-api-key", ["AIza"], _start('AIza') + r"[0-9A-Za-z_-]{35}" + _E),
    _rule("google-oauth-secret", ["GOCSPX-"], _start('GOCSPX-') + r"[A-Za-z0-9_-]{28}" + _E),
    _rule("github-token", [], r"(?:gh(?<![A-Za-z0-9_-]gh)[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})" + _E),
    _rule("gitlab-token", [], _start('gl') + r"(?:pat|dt|ptt|rt|oas)-[A-Za-z0-9_-]{20,}" + _E),
    _rule("slack-token", ["xox"], _start('xox') + r"[abposr]-[0-9A-Za-z-]{10,}" + _E),
    _rule("slack-webhook", ["hooks.slack.com"], r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_-]{20,}"),
    _rule("stripe-key", ["sk_"], _start("sk_") + r"(?:live|test)_[A-Za-z0-9]{20,}" + _E),
    _rule("stripe-key", ["rk_"], _start("rk_") + r"(?:live|test)_[A-Za-z0-9]{20,}" + _E),
    _rule("huggingface-token", ["hf_"], _start('hf_') + r"[A-Za-z]{34}" + _E),
    _rule("npm-token", ["npm_"], _start('npm_') + r"[A-Za-z0-9]{36}" + _E),
    _rule("pypi-token", ["pypi-AgE"], _start('pypi-AgE') + r"[A-Za-z0-9_-]{50,}" + _E),
    _rule("sendgrid-api-key", ["SG."], _start("SG") + r"\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}" + _E),
    _rule("groq-api-key", ["gsk_"], _start('gsk_') + r"[A-Za-z0-9]{52}" + _E),
    _rule("xai-api-key", ["xai-"], _start('xai-') + r"[A-Za-z0-9]{80}" + _E),
    _rule("replicate-token", ["r8_"], _start('r8_') + r"[A-Za-z0-9]{37}" + _E),
    _rule("digitalocean-token", ["_v1_"], _start("do") + r"[op]_v1_[a-f0-9]{64}" + _E),
    _rule("shopify-token", ["shp"], _start('shp') + r"(?:at|ca|pa|ss)_[a-fA-F0-9]{32}" + _E),
    _rule(
        "bearer-token",
        ["earer", "EARER"],
        r"\b[Bb](?:earer|EARER)\s+([A-Za-z0-9_~+/.=-]{16,})",
        group=1,
        accept=_token_like,
    ),
    _rule("basic-auth", ["Basic "], r"Authorization[\"']?\s*[:=]\s*[\"']?Basic\s+([A-Za-z0-9+/=]{12,})", group=1, accept=_token_like),
    _rule("url-password", ["://"], r"://[^\s:/@\"'<>\[\]]{1,64}:([^\s:/@\"'<>\[\]]{1,128})@", group=1, accept=_url_password),
)


class EnvBlockRule:
    """Two or more consecutive `NAME=value` lines (real or JSON-escaped newlines): a .env file's contents."""

    kind = "env-value"
    _block = re.compile(
        r"(?:\n|\\n)(?:export )?[A-Z][A-Z0-9_]{1,63}=[^\s\\]*(?:(?:\n|\\n)(?:export )?[A-Z][A-Z0-9_]{1,63}=[^\s\\]*)+"
    )
    _line = re.compile(r"((?:export )?[A-Z][A-Z0-9_]{1,63}=)([^\s\\]*)")

    def applies(self, text: str) -> bool:
        return "=" in text

    def apply(self, text: str) -> str:
        # The block pattern starts at a line break (a literal the engine searches fast), so give the text one.
        return self._block.sub(lambda block: self._line.sub(self._one, block.group(0)), "\n" + text)[1:]

    def _one(self, line: re.Match) -> str:
        value = line.group(2)
        return line.group(1) + (marker(self.kind) if _env_value(value) else value)


class AssignmentRule:
    """`password = "..."`, `API_KEY: ...`, `"client_secret": "..."`: a secret-named key given a secret-looking value.

    The key search runs on a lower-cased copy (a case-insensitive alternation is ~8x slower in `re`);
    values are then read from the original text at the same offsets.
    """

    kind = "secret"
    _keywords = ("pass", "pwd", "secret", "token", "key", "cred")
    _assignment = re.compile(
        r"(?:pass(?:word|wd|phrase)?|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|auth[_-]?key|credentials?)"
        r"(?:\\?[\"'])?\s*(?::=|=>|[:=])\s*"
        r"(?:\\?([\"'`])([^\"'`\s\\]{6,200})\\?\1|([a-z0-9_\-+/=.!@#$%^&*~]{6,200})(?![\w(\[.\-+/=]))"
    )

    def applies(self, text: str) -> bool:
        return True

    def apply(self, text: str) -> str:
        lowered = text.lower()
        if len(lowered) != len(text):  # a few non-ASCII characters change length when lower-cased
            lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
        if not any(k in lowered for k in self._keywords):
            return text
        pieces, last = [], 0
        for match in self._assignment.finditer(lowered):
            group = 2 if match.group(2) is not None else 3
            start, end = match.span(group)
            if _secret_value(text[start:end], quoted=group == 2):
                pieces += [text[last:start], marker(self.kind)]
                last = end
        return "".join(pieces) + text[last:] if pieces else text


RULES: tuple = PROVIDER_RULES + (EnvBlockRule(), AssignmentRule())


def redact(text: str) -> str:
    """`text` with every secret found replaced by `[REDACTED:<kind>]`."""
    for rule in RULES:
        if rule.applies(text):
            text = rule.apply(text)
    return text


def kinds_found(text: str) -> list[str]:
    """The kinds `redact` would mark, in order of appearance (for reports and benchmarks)."""
    return re.findall(r"\[REDACTED:([a-z0-9-]+)\]", redact(text))
