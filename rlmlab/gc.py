"""Garbage collection: delete the objects of a context that no reader can reach any more.

Segments are immutable and content-addressed, so nothing is ever overwritten: rewriting a
context (another `write_context` to the same prefix, a transcript session that grew and was
uploaded again) leaves the old segments behind, and the transcripts store keeps every
manifest version it committed, each a full copy of the index. `collect` deletes

* manifest versions (`transcripts/manifests/`) older than the newest `keep_versions`;
* segments that neither `manifest.json` nor a kept version names;

and of those only objects older than `grace_s`: a writer uploads its segments before it
publishes the manifest naming them, and a reader that opened an older manifest keeps reading
that manifest's segments. Objects whose names rlmlab does not write (a seed Monocontext's
segments, `compiled/`, anything of the user's) are never touched, and without a readable
`manifest.json` nothing is deleted.

Right before deleting, the manifests are read again and anything they name now is spared; a
writer republishing old content at that very moment (its segments already exist, so it does
not upload them again) is the one race left, so do not run `gc` beside such a writer.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .errors import ManifestError, ObjectNotFound
from .layout import MANIFEST_KEY, Manifest
from .stores import Store, open_store

# Names rlmlab writes: write_context's segments and single objects, uploaded sessions and manifest versions.
OWNED = re.compile(
    r"^(?:segments/\d{6}-[0-9a-f]{16}\.txt"
    r"|context-[0-9a-f]{16}\.txt"
    r"|transcripts/sessions/[^/]+/[0-9a-f]{16}-\d{3}\.txt"
    r"|transcripts/manifests/v(?P<version>\d{8})\.json)$"
)
DEFAULT_GRACE_S = 24 * 3600
DEFAULT_KEEP_VERSIONS = 10
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass
class Collection:
    """What `collect` found and did."""

    uri: str
    dry_run: bool
    kept_versions: list[int]
    referenced: int  # objects the kept manifests name
    deleted: list[str] = field(default_factory=list)  # or, in a dry run, what would be
    deleted_bytes: int = 0
    too_young: list[str] = field(default_factory=list)  # unreferenced, but inside the grace period
    spared: list[str] = field(default_factory=list)  # named by a manifest published while collecting

    def __str__(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        lines = [
            f"{self.uri}: {verb} {len(self.deleted)} objects ({self.deleted_bytes / 1e6:.1f} MB); "
            f"{self.referenced} in use; {len(self.too_young)} unreferenced but younger than the grace period"
        ]
        if self.kept_versions:
            lines.append(f"kept manifest versions {self.kept_versions[0]}..{self.kept_versions[-1]}")
        if self.spared:
            lines.append(f"spared {len(self.spared)} objects a manifest published meanwhile names")
        return "\n".join(lines)


def collect(
    store_or_uri: Store | str,
    *,
    keep_versions: int = DEFAULT_KEEP_VERSIONS,
    grace_s: float = DEFAULT_GRACE_S,
    dry_run: bool = False,
    endpoint_url: str | None = None,
    workers: int = 16,
) -> Collection:
    """Delete unreferenced rlmlab objects older than `grace_s` under a context's prefix."""
    if keep_versions < 1:
        raise ValueError(f"keep_versions must be at least 1 (the newest version is what readers open), got {keep_versions}")
    if grace_s < 0:
        raise ValueError(f"grace_s must be >= 0, got {grace_s}")
    store = open_store(store_or_uri, endpoint_url=endpoint_url) if isinstance(store_or_uri, str) else store_or_uri
    listing = store.list_info()
    versions = sorted(int(m["version"]) for key in listing if (m := OWNED.match(key)) and m["version"])
    kept = versions[-keep_versions:]
    in_use = _referenced(store, kept)
    now = time.time()
    result = Collection(store.uri, dry_run, kept, len(in_use))
    candidates = []
    for key, info in sorted(listing.items()):
        if not OWNED.match(key) or key in in_use:
            continue
        if now - info.modified < grace_s:
            result.too_young.append(key)
        else:
            candidates.append(key)
    if not dry_run and candidates:
        newest = sorted(int(m["version"]) for key in store.list_info("transcripts/manifests/") if (m := OWNED.match(key)) and m["version"])
        now_in_use = _referenced(store, newest[-keep_versions:])
        result.spared = [key for key in candidates if key in now_in_use]
        candidates = [key for key in candidates if key not in now_in_use]
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(store.delete, candidates))
    result.deleted = candidates
    result.deleted_bytes = sum(listing[key].size for key in candidates)
    return result


def _referenced(store: Store, versions: list[int]) -> set[str]:
    """Every key that manifest.json or one of the given manifest versions names, those versions included."""
    try:
        current = store.get(MANIFEST_KEY)
    except ObjectNotFound:
        raise ManifestError(f"{store.uri} has no {MANIFEST_KEY}: nothing says which objects are in use, so nothing is deleted") from None
    keys = {MANIFEST_KEY} | _segment_keys(current, MANIFEST_KEY, store.uri)
    for version in versions:
        key = f"transcripts/manifests/v{version:08d}.json"
        try:
            keys |= {key} | _segment_keys(store.get(key), key, store.uri)
        except ObjectNotFound:  # deleted by another collector since we listed
            continue
    return keys


def _segment_keys(raw: bytes, key: str, uri: str) -> set[str]:
    """The objects one manifest names (rlmlab's format, or the seed's Monocontext list)."""
    try:
        body = json.loads(raw)
        if isinstance(body, list):
            return {entry["segment"] for entry in body}
        return {segment.key for segment in Manifest.from_json(raw).segments}
    except (ValueError, KeyError, TypeError) as error:
        raise ManifestError(f"{uri}/{key} is not a manifest ({error}); nothing is deleted") from None


def parse_duration(text: str) -> float:
    """Seconds from '90', '90s', '30m', '24h' or '7d'."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use seconds, or a number with s, m, h or d: 30m, 24h, 7d)")
    return float(match[1]) * _UNITS[match[2] or "s"]


def add_commands(subparsers) -> None:
    gc = subparsers.add_parser("gc", help="delete segments and manifest versions no reader can reach any more")
    gc.add_argument("uri", help="the context's store URI (s3://, file://, modal://)")
    gc.add_argument("--keep-versions", type=int, default=DEFAULT_KEEP_VERSIONS, help="newest transcript manifest versions to keep (default 10)")
    gc.add_argument("--grace", type=_duration_arg, default=DEFAULT_GRACE_S, help="spare objects younger than this: 90s, 30m, 24h, 7d (default 24h)")
    gc.add_argument("--dry-run", action="store_true", help="say what would be deleted, delete nothing")
    gc.add_argument("--endpoint-url", help="S3 endpoint (R2, MinIO, the embedded simulator)")
    gc.set_defaults(func=_gc)


def _duration_arg(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _gc(args) -> int:
    try:
        result = collect(args.uri, keep_versions=args.keep_versions, grace_s=args.grace, dry_run=args.dry_run, endpoint_url=args.endpoint_url)
    except (ManifestError, ValueError) as error:
        print(f"rlmlab gc: {error}", file=sys.stderr)
        return 2
    print(result)
    return 0
