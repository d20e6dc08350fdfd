"""Time-ordered UUIDv7 ids: b-tree inserts stay local and keyset pages can order by id."""

import uuid

from uuid_utils.compat import uuid7


def new_id() -> uuid.UUID:
    return uuid7()
