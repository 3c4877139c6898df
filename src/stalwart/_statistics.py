"""
Statistics records that travel.

Every primitive's ``statistics()`` returns a frozen record of its counters.
The records share :class:`Statistics`: each carries the ``name`` of its
primitive and turns into plain JSON data with :meth:`Statistics.to_dict`
(states as strings, durations in seconds), so a record can go into a log
line, a health endpoint or a metrics exporter as it is.

:func:`record_dict` does the same for any attrs record (nested records,
and those of primitives from outside stalwart), and
:func:`record_kind` names the kind of primitive a record describes, which
the metrics and the health report use as the ``primitive`` label.
"""

from __future__ import annotations

import enum
import math
import re

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar, cast

import attrs


_WORD = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake(name: str) -> str:
    """
    Return the snake-case spelling of a CapWords class *name*:
    ``CircuitBreaker`` -> ``circuit_breaker``, ``GCRA`` -> ``gcra``.
    """
    return _WORD.sub("_", name).lower()


class Statistics:
    """
    The base of every statistics record.

    A record is a frozen snapshot of one primitive's counters, taken by its
    ``statistics()``.  It carries the primitive's ``name``, and
    :meth:`to_dict` turns it into data that :func:`json.dumps` accepts as
    it is.

    Attributes:
        kind: The kind of primitive the record describes, in snake case
            (``"circuit_breaker"``, ``"retry"``...): the ``primitive``
            label of the metrics and the health report.

    .. versionadded:: 0.2.0
    """

    __slots__ = ()

    kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("kind"):
            cls.kind = snake(cls.__name__.removesuffix("Statistics"))

    def to_dict(self) -> dict[str, Any]:
        """
        Return the record as plain data: ``{"primitive": kind, "name":
        ..., <field>: <value>...}``, with states as strings, durations in
        seconds, mappings as dicts, sequences as lists, and infinite or
        NaN numbers as ``None``.

        .. versionadded:: 0.2.0
        """
        return record_dict(self)


def record_kind(record: object) -> str:
    """
    Return the kind of primitive *record* describes: its class's
    :attr:`Statistics.kind`, else its class name in snake case without the
    ``Statistics`` suffix.
    """
    kind = getattr(type(record), "kind", "")
    if isinstance(kind, str) and kind:
        return kind
    return snake(type(record).__name__.removesuffix("Statistics"))


def record_dict(record: object) -> dict[str, Any]:
    """
    Return the attrs record *record* as plain data (see
    :meth:`Statistics.to_dict`).
    """
    data: dict[str, Any] = {"primitive": record_kind(record)}
    for field in attrs.fields(cast("Any", type(record))):
        data[field.name] = jsonable(getattr(record, field.name))
    return data


def jsonable(value: object) -> Any:
    """
    Return *value* as data :func:`json.dumps` accepts as it is: enums by
    their value, a :class:`~datetime.timedelta` in seconds, non-finite
    floats as ``None``, records as dicts, mappings as dicts with string
    keys, other collections as lists, anything else as its ``str``.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Statistics):
        return value.to_dict()
    if attrs.has(type(value)):
        return record_dict(value)
    if isinstance(value, Mapping):
        return {
            str(jsonable(key)): jsonable(item) for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item) for item in value]
    return str(value)
