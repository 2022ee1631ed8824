"""Fake secrets shaped like real ones, and ordinary text that merely looks random.

Built at run time from a seeded RNG so no key-shaped string is ever committed. The redaction
tests, `rlmlab bench redact` and the synthetic transcripts all plant them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import uuid
from dataclasses import dataclass

ALNUM = string.ascii_letters + string.digits
UPPER32 = string.ascii_uppercase + "234567"


@dataclass(frozen=True)
class Planted:
    kind: str  # the kind `redact` should report
    secret: str  # the exact substring that must disappear
    line: str  # the secret in a realistic line of text


def _s(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _b64url(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _private_key(rng: random.Random, escaped: bool) -> str:
    nl = "\\n" if escaped else "\n"
    body = nl.join(_s(rng, ALNUM + "+/", 64) for _ in range(6))
    kind = rng.choice(["RSA ", "EC ", "OPENSSH ", ""])
    return f"-----BEGIN {kind}PRIVATE KEY-----{nl}{body}{nl}-----END {kind}PRIVATE KEY-----"


def planted_secrets(rng: random.Random) -> list[Planted]:
    """One of every kind the redactor knows, each inside a line a developer could have pasted."""
    r = rng
    ant = "sk-ant-" + "api03-" + _s(r, ALNUM + "_-", 93) + "AA"
    oai = "sk-" + "proj-" + _s(r, ALNUM + "_-", 74) + "T3Blbk" + "FJ" + _s(r, ALNUM + "_-", 74)
    akid = "AK" + "IA" + _s(r, UPPER32, 16)
    aws_secret = _s(r, ALNUM + "/+", 40)
    google = "AI" + "za" + _s(r, ALNUM + "_-", 35)
    ghp = "gh" + "p_" + _s(r, ALNUM, 36)
    glpat = "gl" + "pat-" + _s(r, ALNUM + "_-", 20)
    slack = "xo" + "xb-" + "-".join(_s(r, string.digits, 12) for _ in range(2)) + "-" + _s(r, ALNUM, 24)
    stripe = "sk" + "_live_" + _s(r, ALNUM, 24)
    hf = "h" + "f_" + _s(r, string.ascii_letters, 34)
    npm = "np" + "m_" + _s(r, ALNUM, 36)
    jwt = ".".join([_b64url({"alg": "HS256", "typ": "JWT"}), _b64url({"sub": _s(r, string.digits, 8), "name": "dev"}), _s(r, ALNUM + "_-", 43)])
    bearer = _s(r, ALNUM, 40)
    url_pw = _s(r, ALNUM, 14)
    pw = _s(r, ALNUM, 10) + "!" + _s(r, string.digits, 2)
    env_secret = _s(r, ALNUM, 32)
    db_pw = _s(r, ALNUM, 16)
    key_plain = _private_key(r, escaped=False)
    key_escaped = _private_key(r, escaped=True)
    return [
        Planted("anthropic-api-key", ant, f"export ANTHROPIC_KEY_BACKUP={ant}"),
        Planted("openai-api-key", oai, f'client = OpenAI(api_key="{oai}")'),
        Planted("aws-access-key-id", akid, f"aws configure set aws_access_key_id {akid}"),
        Planted("aws-secret-access-key", aws_secret, f"aws_secret_access_key = {aws_secret}"),
        Planted("google-api-key", google, f"curl 'https://maps.googleapis.com/maps/api/geocode/json?key={google}'"),
        Planted("github-token", ghp, f"git remote set-url origin https://{ghp}@github.com/acme/app.git"),
        Planted("gitlab-token", glpat, f"the CI token is {glpat} (rotate it monthly)"),
        Planted("slack-token", slack, f"SLACK_BOT={slack} was pasted in the channel"),
        Planted("stripe-key", stripe, f"stripe.api_key = '{stripe}'"),
        Planted("huggingface-token", hf, f"huggingface-cli login --token {hf}"),
        Planted("npm-token", npm, f"//registry.npmjs.org/:_authToken={npm}"),
        Planted("jwt", jwt, f"the session cookie was {jwt}; it expired"),
        Planted("bearer-token", bearer, f'curl -H "Authorization: Bearer {bearer}" https://api.example.com/v1/me'),
        Planted("url-password", url_pw, f"DATABASE: postgres://app:{url_pw}@db.internal:5432/prod"),
        Planted("secret", pw, f'{{"username": "admin", "password": "{pw}"}}'),
        Planted("env-value", env_secret, f"APP_NAME=shop\nSESSION_SIGNING={env_secret}\nPORT=8080"),
        Planted("secret", db_pw, f"db_password = {db_pw}"),
        Planted("private-key", key_plain, f"here is the deploy key:\n{key_plain}\nuse it carefully"),
        Planted("private-key", key_escaped, json.dumps({"content": f"{key_escaped}"})[1:-1]),
    ]


def ordinary_lines(rng: random.Random) -> list[str]:
    """Text that is random-looking but not secret: what a precise redactor must leave alone."""
    r = rng
    sha = hashlib.sha1(_s(r, ALNUM, 12).encode()).hexdigest()
    sha256 = hashlib.sha256(_s(r, ALNUM, 12).encode()).hexdigest()
    integrity = base64.b64encode(hashlib.sha512(_s(r, ALNUM, 12).encode()).digest()).decode()
    return [
        f"commit {sha}",
        f"Merge: {sha[:7]} {sha256[:7]}",
        f"session {uuid.UUID(int=r.getrandbits(128))} started",
        f'    "integrity": "sha512-{integrity}",',
        f'    {{file = "requests-2.32.3-py3-none-any.whl", hash = "sha256:{sha256}"}},',
        f"docker pull python@sha256:{sha256}",
        "token = get_token()",
        "max_tokens = 4096",
        '"usage": {"input_tokens": 3, "output_tokens": 512, "cache_read_input_tokens": 11515}',
        "password = os.environ['DB_PASSWORD']",
        "const csrfToken = document.querySelector(\"meta[name='csrf-token']\").content",
        "if not secret_key: raise ValueError('SECRET_KEY is not set')",
        "We use Bearer authentication for every endpoint.",
        "postgres://user:password@localhost:5432/dev",
        "DATABASE_URL=postgres://localhost/dev",
        "api_key = settings.OPENAI_API_KEY",
        '{"grant_type": "refresh_token", "token_type": "Bearer"}',
        "the key insight: parallel fetches beat sequential gets",
        f"Read /home/dev/app/{_s(r, string.ascii_lowercase, 8)}.py (lines 1-200)",
        "kubectl get secret db-credentials -o yaml",
        f"pip install rlmlab=={r.randint(0, 9)}.{r.randint(0, 20)}.{r.randint(0, 9)}",
    ]
