"""
Hooks attached to a primitive after it was built.

A primitive's ``hooks=`` are fixed when it is built (a frozen field).
Metrics, logs and registries need to attach a hook to a primitive that
already exists (its functions decorated at import time), so every
primitive keeps a :class:`LiveHooks`: the hooks it was built with plus the
ones attached since, through :meth:`Observable.add_hook` and
:meth:`Observable.remove_hook`.

The two lists of a :class:`LiveHooks` keep their identity for the life of
the primitive and are changed in place, so a hot path tests one of them
exactly as it tested the ``hooks`` tuple (``if hooks:`` costs the same on a
list), and a closure built before a hook was attached sees it.  Events are
emitted to a snapshot of a list (:func:`~stalwart._events.emit` copies a
list before iterating), so a hook removed meanwhile never makes another
one miss an event.

Each list also has an immutable snapshot, :attr:`LiveHooks.all_now` and
:attr:`LiveHooks.calls_now`: a tuple replaced (never changed) on every
attachment and removal, under the same lock.  A per-call path reads the
snapshot once and iterates it inline, each hook call in ``try`` / ``except
Exception`` logged through :func:`~stalwart._events.hook_failed`: the same
contract as :func:`~stalwart._events.emit` (a hook's error is logged and
swallowed; a hook removed meanwhile never makes another miss the event),
without the copy and the frame.

Hooks that want **per-call events** (:class:`~stalwart.CallFinished` for
every call, the full event stream of resilience4j, and what the duration
histograms of the metrics are fed with) say so: ``per_call=True`` when
attached, or a ``per_call`` attribute set to ``True`` on the hook (as
:class:`~stalwart.LoggingHook` has).  The primitive is told when the first
such hook arrives and when the last one leaves, and only then switches its
faces to the path that times calls; without one, its hot paths are
unchanged.

To plug a primitive in:

1. derive it from :class:`Observable` and give it a private
   ``_live: LiveHooks`` built from its ``hooks`` (:func:`live_hooks`);
2. test ``self._live.all`` (or a closure variable holding that list) where
   it tested ``self.hooks``, and emit to it;
3. if it reports per-call events, test ``self._live.calls`` where a call
   ends (or pass ``on_change`` to :func:`live_hooks` to re-wire its faces
   when per-call hooks come and go) and emit
   :class:`~stalwart.CallFinished` to that list (or, on a hot path, to
   :attr:`LiveHooks.calls_now`, inline).
"""

from __future__ import annotations

import threading
import weakref

from collections.abc import Callable
from typing import Any

from ._events import Hook
from ._validators import to_hooks


def wants_calls(hook: object) -> bool:
    """
    Tell whether *hook* asks for per-call events (a true ``per_call``
    attribute).
    """
    return getattr(hook, "per_call", False) is True


class LiveHooks:
    """
    The hooks in effect on one primitive.

    Attributes:
        all: Every hook: the primitive's events go to each.
        calls: The hooks that also receive per-call events (a subset of
            :attr:`all`).
        all_now: The hooks of :attr:`all` as a tuple, replaced on every
            change: what a hot path iterates without copying.
        calls_now: The hooks of :attr:`calls` as a tuple, likewise.
    """

    __slots__ = (
        "_lock",
        "_watchers",
        "all",
        "all_now",
        "calls",
        "calls_now",
        "on_change",
    )

    def __init__(
        self,
        hooks: tuple[Hook, ...],
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.all: list[Hook] = list(hooks)
        self.calls: list[Hook] = [hook for hook in hooks if wants_calls(hook)]
        self.all_now: tuple[Hook, ...] = tuple(self.all)
        self.calls_now: tuple[Hook, ...] = tuple(self.calls)
        self.on_change = on_change
        """Called (outside the lock) when :attr:`calls` becomes empty or
        not empty, or :attr:`all` does."""
        self._lock = threading.Lock()
        self._watchers: list[weakref.WeakMethod[Callable[[], None]]] = []

    def watch(self, method: Callable[[], None]) -> None:
        """
        Call the bound *method* too (outside the lock) when
        :attr:`on_change` is called, for as long as its object lives: a
        composition of primitives (a pipeline) follows its stages' hooks
        without keeping itself alive through them.
        """
        with self._lock:
            self._watchers.append(weakref.WeakMethod(method))

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()
        with self._lock:
            watchers = list(self._watchers)
        gone = False
        for ref in watchers:
            method = ref()
            if method is None:
                gone = True
            else:
                method()
        if gone:
            with self._lock:
                self._watchers[:] = [
                    ref for ref in self._watchers if ref() is not None
                ]

    def _snapshot(self) -> None:
        """Replace the snapshots (under the lock, after a change)."""
        self.all_now = tuple(self.all)
        self.calls_now = tuple(self.calls)

    def add(self, hook: Hook, per_call: bool | None) -> None:
        """
        Attach *hook*; *per_call* ``None`` reads the hook's own ``per_call``
        attribute.
        """
        check_hook(hook)
        if per_call is None:
            per_call = wants_calls(hook)
        with self._lock:
            before = bool(self.all), bool(self.calls)
            self.all.append(hook)
            if per_call:
                self.calls.append(hook)
            self._snapshot()
            after = bool(self.all), bool(self.calls)
        if before != after:
            self._changed()

    def remove(self, hook: Hook) -> None:
        """
        Detach *hook* (its most recent attachment).

        Raises:
            ValueError: If it is not attached.
        """
        with self._lock:
            before = bool(self.all), bool(self.calls)
            if hook not in self.all:
                msg = f"{hook!r} is not a hook of this primitive"
                raise ValueError(msg)
            _remove_last(self.all, hook)
            if hook in self.calls:
                _remove_last(self.calls, hook)
            self._snapshot()
            after = bool(self.all), bool(self.calls)
        if before != after:
            self._changed()


def check_hook(hook: object) -> None:
    """
    Refuse *hook* unless it is a plain callable.

    Raises:
        TypeError: If it is not callable, or is ``async``.
    """
    if not callable(hook):
        msg = f"'hook' must be callable (got {hook!r})"
        raise TypeError(msg)
    to_hooks(hook, "hook")  # refuses an async one


def _remove_last(hooks: list[Hook], hook: Hook) -> None:
    index = len(hooks) - 1 - hooks[::-1].index(hook)
    del hooks[index]


def live_hooks(
    primitive: object,
    hooks: tuple[Hook, ...],
    on_change: Callable[[], None] | None = None,
) -> LiveHooks:
    """
    Build the :class:`LiveHooks` of *primitive* from its *hooks* and store
    it as its ``_live`` (the primitive may be a frozen attrs instance).
    """
    live = LiveHooks(hooks, on_change)
    object.__setattr__(primitive, "_live", live)
    return live


class Observable:
    """
    Lets hooks be attached to a primitive after it was built: metrics,
    logs, a registry's instruments.

    .. versionadded:: 0.2.0
    """

    __slots__ = ()

    _live: LiveHooks

    def add_hook(self, hook: Hook, /, *, per_call: bool | None = None) -> None:
        """
        Attach *hook*: from now on it receives the primitive's events, as a
        hook given in ``hooks=`` does (the ``hooks`` attribute still lists
        only those).

        Args:
            hook: A callable receiving events.
            per_call: Whether it also receives per-call events
                (:class:`~stalwart.CallFinished`); by default, what the
                hook's own ``per_call`` attribute says (``False`` when it
                has none).

        Raises:
            TypeError: If *hook* is not a plain callable.

        .. versionadded:: 0.2.0
        """
        self._live.add(hook, per_call)

    def remove_hook(self, hook: Hook, /) -> None:
        """
        Detach a hook attached with :meth:`add_hook` or given in
        ``hooks=``.

        Raises:
            ValueError: If *hook* is not attached.

        .. versionadded:: 0.2.0
        """
        self._live.remove(hook)


def observable(primitive: object) -> LiveHooks | None:
    """
    Return the :class:`LiveHooks` of *primitive*, or ``None`` for a
    primitive hooks cannot be attached to (yet).
    """
    live: Any = getattr(primitive, "_live", None)
    return live if isinstance(live, LiveHooks) else None
