"""Resource names (AIP-122): ``collection/{id}`` strings on the wire, ids inside."""

from __future__ import annotations

import re

from openloop_runtime.errors import invalid_field

_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def parse_name(name: str, collection: str, *, field: str = "name", suffix: str = "") -> str:
    """The id in ``{collection}/{id}{suffix}``, or INVALID_ARGUMENT naming ``field``."""
    prefix = f"{collection}/"
    if name.startswith(prefix) and name.endswith(suffix):
        resource_id = name[len(prefix) : len(name) - len(suffix)]
        if _ID.fullmatch(resource_id):
            return resource_id
    raise invalid_field(
        field, f"{field} must look like '{collection}/{{id}}{suffix}' with a lower-case id"
    )


def is_valid_id(resource_id: str) -> bool:
    return _ID.fullmatch(resource_id) is not None


def format_name(collection: str, resource_id: str) -> str:
    return f"{collection}/{resource_id}"
