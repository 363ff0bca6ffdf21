"""Checks that no credential is written into a spec: specs live in git."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pipegen.checks import CheckContext, check
from pipegen.diagnostics import Diagnostic, diag
from pipegen.expr import ExpressionError, Ref, parse_template
from pipegen.loader import PathKey
from pipegen.runtime.url_credentials import SECRET_PATH, is_credential_name

# Every URL in a string (a command argument may hold one after `--url=`), and the parts that carry
# credentials; the runtime masks the same parts in its messages (pipegen.runtime.redact).
# A scheme starts only where no scheme character precedes it: without the look-behind, every position of a long
# word would start a scan to its end (quadratic: a 40 KB word took seconds).
_URL = re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:(?P<password>[^/\s@]+)@")
_SECRET_KEY = re.compile(r"pass(word|wd)?|pwd|token|secret|api[_-]?key|access[_-]?key|private[_-]?key|credential", re.I)
# Keys that name where a secret lives, or what supplies it, rather than holding it; dotted keys too (Spark's and
# Hadoop's `...credentials.provider` names a provider class).
_REFERENCE_KEY = re.compile(r"([._-]|^)(name|names|arn|ref|file|path|id|env|ttl|provider|providers)$", re.I)
_SECRET_FLAG = re.compile(r"--?(?P<flag>[A-Za-z0-9_-]+)(=(?P<value>.*))?\Z", re.S)


def _is_reference(text: str) -> bool:
    """True when text is empty or only ${...} references (a secret or env reference is fine)."""
    try:
        template = parse_template(text)
    except ExpressionError:
        return False
    return template.literal_text().strip() == "" or all(isinstance(p, Ref) for p in template.parts)


def _hint(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_").lower() or "credential"
    return "reference a secret instead: ${secret." + slug + "}"


def _strings(node: Any, path: PathKey) -> Iterator[tuple[PathKey, str | None, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str):
                yield (*path, key), key, value
            else:
                yield from _strings(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, str):
                yield (*path, i), None, value
            else:
                yield from _strings(value, (*path, i))


def _url_credential(text: str) -> tuple[str, str] | None:
    """(message, hint) for the first literal credential in a URL inside text: password, secret path, query token."""
    for url in _URL.findall(text):
        match = _URL_PASSWORD.match(url)
        if match and not _is_reference(match["password"]):
            return "URL holds a literal password", "put the password in a secret and write ${secret.NAME} in its place"
        path = SECRET_PATH.search(url)
        # A Slack or Discord webhook URL is its own credential: its last path segment is the secret.
        if path and not _is_reference(path["path"].rstrip("/").rsplit("/", 1)[-1]):
            return (
                "webhook URL holds its secret in its path (anyone with the URL can post)",
                "put the whole URL in a secret: ${secret.NAME}",
            )
        query = url.partition("?")[2].partition("#")[0]
        for pair in re.split(r"[&;]", query):
            name, _, value = pair.partition("=")
            if value and is_credential_name(name) and not _REFERENCE_KEY.search(name) and not _is_reference(value):
                return (
                    f"URL holds a literal credential in its query parameter '{name}'",
                    f"put the value in a secret: {name}=" + "${secret.NAME}, or the whole URL: ${secret.NAME}",
                )
    return None


@check
def no_literal_credentials(ctx: CheckContext) -> Iterator[Diagnostic]:
    """URLs carry no password, token or secret path; keys named like secrets hold references, not values."""
    for path, key, text in _strings(ctx.data, ()):
        found = _url_credential(text)
        if found is not None:
            yield diag("PG500", found[0], ctx.smap.value(path), found[1])
            continue
        if key and _SECRET_KEY.search(key) and not _REFERENCE_KEY.search(key) and not _is_reference(text):
            yield diag("PG501", f"'{key}' holds a literal credential", ctx.smap.value(path), _hint(key))
    yield from _command_flags(ctx)


def _command_flags(ctx: CheckContext) -> Iterator[Diagnostic]:
    """`--password x` or `--token=x` in a command."""
    for i, step in enumerate(ctx.spec.steps):
        body = step.task or step.train
        if body is None:
            continue
        args = body.command
        for j, arg in enumerate(args):
            match = _SECRET_FLAG.match(arg)
            if not match or not _SECRET_KEY.search(match["flag"]) or _REFERENCE_KEY.search(match["flag"]):
                continue
            value, at = (
                (match["value"], j)
                if match["value"] is not None
                else ((args[j + 1], j + 1) if j + 1 < len(args) else (None, j))
            )
            if value is not None and not _is_reference(value):
                yield diag(
                    "PG501",
                    f"command flag '--{match['flag']}' is given a literal credential",
                    ctx.step_at(i, step.kind, "command", at),
                    _hint(match["flag"]),
                )
