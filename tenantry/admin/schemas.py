from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from tenantry.kit.text import text


class CacheStatOut(BaseModel):
    name: str
    backend: Literal["memory", "memory+redis"]
    size: int = Field(description="Entries in this instance's memory")
    max_size: int
    ttl_s: float
    hits: int
    misses: int
    hit_rate: float = Field(description="hits / (hits + misses), 0 when never asked")
    loads: int = Field(description="Misses that went to the database")
    l2_hits: int = Field(description="Misses answered by Redis")
    evictions: int = Field(description="Entries pushed out because the cache was full")
    expirations: int


class RedisStatusOut(BaseModel):
    up: bool
    errors: int = Field(description="Failed Redis calls since start")
    last_error: str | None
    down_for_s: float | None


class CacheStatsOut(BaseModel):
    instance_id: str
    invalidation_bus: Literal["postgres", "redis"]
    bus_connected: bool
    redis: RedisStatusOut | None = Field(description="Absent without REDIS_URL")
    caches: list[CacheStatOut]


class CacheClearIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cache: Annotated[str, text(max_length=64)] | None = Field(
        None, description="One cache by name; omit to clear them all"
    )


class CacheClearOut(BaseModel):
    cleared: list[str]


class InvalidatedOut(BaseModel):
    email: str
    user_id: uuid.UUID
    invalidated: list[str]
