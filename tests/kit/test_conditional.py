from __future__ import annotations

import pytest

from tenantry.kit.cache import CacheSpec, NamedCache, Rendered
from tenantry.kit.conditional import etag_matches

TAG = '"abc"'


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        ('"abc"', True),
        ('W/"abc"', True),
        ('"x", "abc"', True),
        ("*", True),
        ('"abcd"', False),
        ("abc", False),
    ],
)
def test_if_none_match(header: str | None, matches: bool) -> None:
    assert etag_matches(header, TAG) is matches


def test_rendered_bytes_follow_their_entry() -> None:
    cache: NamedCache[dict[str, int]] = NamedCache(
        CacheSpec("r", ttl_s=60, max_size=2, value_type=dict[str, int])
    )
    first = {"a": 1}
    made = cache.rendered("k", first)
    assert made == Rendered.of(b'{"a":1}')
    assert cache.rendered("k", first) is made  # the same entry: made once
    assert cache.rendered("k", {"a": 2}).body == b'{"a":2}'  # a new entry: made again
    cache.drop_local("k")
    assert cache.rendered("k", first) is not made  # dropped with the entry
    cache.rendered("k2", first)
    cache.rendered("k3", first)
    assert len(cache._rendered) == 2  # bounded like the cache
