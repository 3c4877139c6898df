"""
Make the API reference's cross-references resolve, offline, to public names.

* Public classes live in private modules (``stalwart._retry.Retry``) and
  annotations name them there; the API reference documents them as
  ``stalwart.Retry``.  A reference to the former resolves to the latter,
  and only when that public name is documented.
* Type variables (``T``, ``P``) are shown as text, unlinked.
* Type aliases named in signatures (``Jitter``, ``RateSpec``...) link to
  their entries in the API reference's "Types in signatures" section.
* Private base classes (``_Limiter``) are left out of "Bases:", and a
  method whose docstring defers to a private base's method ("See
  ``_Limiter.acquire``") is shown with that method's documentation.
* The standard library's names link to docs.python.org through
  intersphinx, from an inventory this extension writes into the build
  directory (from the table below), so the build needs no network.  A
  reference to a standard name missing from the table fails the build:
  add it here.
"""

from __future__ import annotations

import inspect
import pathlib
import re
import zlib

from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.environment import BuildEnvironment
from sphinx.ext import intersphinx
from sphinx.util import logging

import stalwart
import stalwart.testing


logger = logging.getLogger(__name__)


PYTHON_DOCS = "https://docs.python.org/3"

# (name, role, page) of every standard-library object the docs refer to.
STDLIB = [
    ("asyncio.CancelledError", "exception", "library/asyncio-exceptions"),
    ("asyncio.sleep", "function", "library/asyncio-task"),
    ("asyncio.timeout", "function", "library/asyncio-task"),
    ("asyncio.to_thread", "function", "library/asyncio-task"),
    ("BaseException", "exception", "library/exceptions"),
    ("Exception", "exception", "library/exceptions"),
    ("KeyboardInterrupt", "exception", "library/exceptions"),
    ("TimeoutError", "exception", "library/exceptions"),
    ("TypeError", "exception", "library/exceptions"),
    ("UserWarning", "exception", "library/exceptions"),
    ("ValueError", "exception", "library/exceptions"),
    ("collections.abc.AsyncIterator", "class", "library/collections.abc"),
    ("collections.abc.Awaitable", "class", "library/collections.abc"),
    ("collections.abc.Callable", "class", "library/collections.abc"),
    ("collections.abc.Hashable", "class", "library/collections.abc"),
    ("collections.abc.Iterable", "class", "library/collections.abc"),
    ("collections.abc.Iterator", "class", "library/collections.abc"),
    ("collections.abc.Mapping", "class", "library/collections.abc"),
    ("collections.abc.MutableMapping", "class", "library/collections.abc"),
    ("collections.abc.Sequence", "class", "library/collections.abc"),
    ("concurrent.futures.Future", "class", "library/concurrent.futures"),
    ("datetime.timedelta", "class", "library/datetime"),
    ("enum.Enum", "class", "library/enum"),
    ("ipaddress.IPv4Network", "class", "library/ipaddress"),
    ("ipaddress.IPv6Network", "class", "library/ipaddress"),
    ("json.dumps", "function", "library/json"),
    ("logging", "module", "library/logging"),
    ("logging.Logger", "class", "library/logging"),
    ("logging.LogRecord", "class", "library/logging"),
    ("random.Random", "class", "library/random"),
    ("threading.Event", "class", "library/threading"),
    ("time.monotonic", "function", "library/time"),
    ("time.sleep", "function", "library/time"),
    ("typing.Literal", "data", "library/typing"),
    ("typing.Protocol", "class", "library/typing"),
]

# Names that reach the docs under another spelling: a bare name from an
# unevaluated annotation, or a private module of the standard library.
REWRITE = {
    "timedelta": "datetime.timedelta",
    "concurrent.futures._base.Future": "concurrent.futures.Future",
    "Literal": "typing.Literal",
}

# Type aliases in signatures, documented in api.rst's "Types in signatures".
ALIASES = {
    "Backoff": "stalwart._retry.Backoff",
    "ExceptionFilter": "stalwart._validators.ExceptionFilter",
    "ExceptionSpec": "stalwart._typing.ExceptionSpec",
    "Jitter": "stalwart._retry.Jitter",
    "Owner": "stalwart._deadline.Owner",
    "Policy": "stalwart._core.buffer.Policy",
    "RateSpec": "stalwart._rates.RateSpec",
    "RatesSpec": "stalwart._rates.RatesSpec",
    "RetryOn": "stalwart._retry.RetryOn",
    "Seconds": "stalwart._typing.Seconds",
    "TimeSource": "stalwart._redis.TimeSource",
    "UnavailablePolicy": "stalwart._redis.UnavailablePolicy",
    "WaitFunction": "stalwart._retry.WaitFunction",
}

# Names of the extras' libraries, which have no inventory here: shown as
# code, not linked.
EXTERNAL = {
    "httpx.AsyncBaseTransport",
    "httpx.AsyncClient",
    "httpx.AsyncHTTPTransport",
    "httpx.BaseTransport",
    "httpx.Client",
    "httpx.HTTPStatusError",
    "httpx.HTTPTransport",
    "httpx.Request",
    "httpx.Response",
    "prometheus_client.CollectorRegistry",
    "prometheus_client.registry.CollectorRegistry",
    "prometheus_client.metrics_core.Metric",
    "opentelemetry.metrics.MeterProvider",
    "redis.Redis",
    "redis.client.Redis",
    "redis.asyncio.Redis",
    "redis.asyncio.client.Redis",
}

TYPE_VARIABLES = {
    "stalwart._typing.T",
    "stalwart._typing.P",
    "stalwart._buffer.T",
    "stalwart._buffer.D",
    "stalwart._pool.R",
    "stalwart._keyed_breaker.K",
    "stalwart._registry.P",
    "K",
    "T",
    "P",
    "P.args",
    "P.kwargs",
}

# Rewrites of autodoc's signatures.  It spells ``*args: P.args`` as
# ``*args: ~typing.~P``, which the Python domain cannot parse: the whole
# signature would then be plain text.
PARAM_SPEC = (
    (re.compile(r"(\*args: )~typing\.~(\w+)"), r"\1\2.args"),
    (re.compile(r"(\*\*kwargs: )~typing\.~(\w+)"), r"\1\2.kwargs"),
    (re.compile(r"Callable\[\[~(\w+)\], "), r"Callable[\1, "),
    (re.compile(r"\[~(\w+)\]"), r"[\1]"),
    # attrs' factory defaults; "..." says "a default" as in stub files.
    (re.compile(r"= NOTHING\b"), "= ..."),
    # Reprs that are not Python would leave the signature unparsed (plain
    # text): a class is its name, a sentinel is "...".
    (re.compile(r"<class '([\w.]+)'>"), r"\1"),
    (re.compile(r"= <[^'<>]*>(?=[,)])"), "= ..."),
)


def _param_spec(
    app: Sphinx,
    what: str,
    name: str,
    obj: object,
    options: Any,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str | None, str | None] | None:
    if signature is None:
        return None
    for pattern, replacement in PARAM_SPEC:
        signature = pattern.sub(replacement, signature)
    return signature, return_annotation


def _public_names() -> dict[str, str]:
    names = {}
    for module, public in (
        (stalwart, "stalwart"),
        (stalwart.testing, "stalwart.testing"),
    ):
        for name in module.__all__:
            obj = getattr(module, name)
            names[f"{obj.__module__}.{name}"] = f"{public}.{name}"
    return names


PUBLIC = _public_names()


def _write_inventory(app: Sphinx, config: Config) -> None:
    """
    Write the standard library's inventory and point intersphinx at it.
    """
    lines = [
        f"{name} py:{role} 1 {page}.html#$ -" for name, role, page in STDLIB
    ]
    header = (
        "# Sphinx inventory version 2\n# Project: Python\n# Version: 3\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    path = pathlib.Path(app.doctreedir) / "python-objects.inv"
    path.parent.mkdir(parents=True, exist_ok=True)
    body = zlib.compress(("\n".join(lines) + "\n").encode())
    path.write_bytes(header.encode() + body)
    config.intersphinx_mapping = {"python": (PYTHON_DOCS, str(path))}


def _resolve(
    app: Sphinx,
    env: BuildEnvironment,
    node: Any,
    contnode: nodes.TextElement,
) -> nodes.Element | None:
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    if target in TYPE_VARIABLES or target in EXTERNAL:
        return contnode
    if target in REWRITE:
        node["reftarget"] = REWRITE[target]
        return intersphinx.missing_reference(app, env, node, contnode)
    public = PUBLIC.get(target) or ALIASES.get(target)
    if public is None:
        return None
    domain = env.get_domain("py")
    kinds = ("class", "data", "obj") if node["reftype"] == "class" else ()
    for reftype in (node["reftype"], *kinds):
        found = domain.resolve_xref(
            env, node["refdoc"], app.builder, reftype, public, node, contnode
        )
        if found is not None:
            return found
    return None


def _public_bases(
    app: Sphinx, name: str, obj: type, options: Any, bases: list[type]
) -> None:
    bases[:] = [
        base
        for base in bases
        if base is not object and not base.__name__.startswith("_")
    ]


DEFER = re.compile(r"[:,]?\s*[Ss]ee\s+:meth:`~?(_\w+)\.(\w+)`\.?")
VERSIONADDED = re.compile(r"^\.\. versionadded::.*$", re.MULTILINE)


def _without_reference(match: re.Match[str]) -> str:
    # "waiting up to *timeout*: see :meth:`_Base.m`." ends the sentence;
    # a "See :meth:`_Base.m`." sentence of its own disappears.
    return "." if match[0][0] in ":," else ""


def _inline_private_base(
    app: Sphinx,
    what: str,
    name: str,
    obj: object,
    options: Any,
    lines: list[str],
) -> None:
    """
    Show a private base's method documentation where a method defers to it.
    """
    if what != "method":
        return
    text = "\n".join(lines)
    match = DEFER.search(text)
    if match is None:
        return
    owner = getattr(stalwart, name.split(".")[-2], None)
    base = next(
        (c for c in getattr(owner, "__mro__", ()) if c.__name__ == match[1]),
        None,
    )
    if base is None:
        return
    body = inspect.getdoc(getattr(base, match[2])) or ""
    body = VERSIONADDED.sub("", body).strip()  # the override's one stays
    summary = DEFER.sub(_without_reference, text)
    added = VERSIONADDED.findall(summary)
    summary = VERSIONADDED.sub("", summary).strip()
    lines[:] = [
        *summary.splitlines(),
        "",
        *body.splitlines()[1:],
        "",
        *added,
    ]


def _undocumented(
    app: Sphinx, what: str, name: str, obj: object, skip: bool, options: Any
) -> None:
    """
    Warn (an error under -W) about a public method with no docstring.

    Data members and properties may be documented in their class's
    ``Args`` or ``Attributes`` section instead.
    """
    public = not name.startswith("_")
    if skip and public and inspect.isroutine(obj) and not inspect.getdoc(obj):
        logger.warning(
            "public member %r of a %s has no docstring",
            name,
            what,
            type="stalwart",
            subtype="undocumented",
        )


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("sphinx.ext.intersphinx")
    # Before intersphinx validates its mapping (priority 800).
    app.connect("config-inited", _write_inventory, priority=400)
    app.connect("missing-reference", _resolve)
    app.connect("autodoc-process-bases", _public_bases)
    app.connect("autodoc-skip-member", _undocumented)
    app.connect("autodoc-process-signature", _param_spec)
    # Before napoleon turns the docstring's sections into fields.
    app.connect(
        "autodoc-process-docstring", _inline_private_base, priority=400
    )
    return {"parallel_read_safe": True, "parallel_write_safe": True}
