"""Sync sources: a tenant's outside systems, their URLs checked against where we will call
(`kit.http.check_url`) and their secrets sealed (`kit.secrets`)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.authz.principal import Principal
from tenantry.kit.errors import Invalid, NotFound
from tenantry.kit.http import OutboundRefused, check_url
from tenantry.kit.pagination import offset_of
from tenantry.kit.platform import Service
from tenantry.sync.models import SyncSource
from tenantry.sync.repository import SourceRepository
from tenantry.sync.schemas import SourceCreate, SourceOut, SourcePage, SourcePatch


class SyncService(Service):
    async def _checked_url(self, url: str) -> str:
        try:
            return await check_url(url, self.platform.settings.outbound_allowlist)
        except OutboundRefused as exc:
            raise Invalid(("body", "base_url"), str(exc), "url_refused") from None

    def _out(self, source: SyncSource) -> SourceOut:
        return SourceOut.model_validate(
            {**source.__dict__, "has_secret": source.secret_sealed is not None}
        )

    async def create_source(
        self, session: AsyncSession, admin: Principal, body: SourceCreate
    ) -> SourceOut:
        url = await self._checked_url(body.base_url)
        source = SyncSource(
            name=body.name,
            kind=body.kind,
            base_url=url,
            auth_header=body.auth_header,
            secret_sealed=self.platform.secrets.seal(body.secret) if body.secret else None,
            page_size=body.page_size,
            schedule=body.schedule,
            enabled=body.enabled,
        )
        SourceRepository(session, admin.scope).add(source)
        await session.flush()
        await session.refresh(source, ["created_at", "updated_at"])
        return self._out(source)

    async def page(
        self, session: AsyncSession, admin: Principal, *, page: int, per_page: int
    ) -> SourcePage:
        sources, total = await SourceRepository(session, admin.scope).entity_page(
            offset=offset_of(page, per_page), limit=per_page
        )
        items = [self._out(s) for s in sources]
        return SourcePage.of(items, total=total, page=page, per_page=per_page)

    async def source(
        self, session: AsyncSession, admin: Principal, source_id: uuid.UUID
    ) -> SourceOut:
        return self._out(await self._find(session, admin, source_id))

    async def _find(
        self, session: AsyncSession, admin: Principal, source_id: uuid.UUID
    ) -> SyncSource:
        source = await SourceRepository(session, admin.scope).get(source_id)
        if source is None:
            raise NotFound("No such sync source in your company.")
        return source

    async def update_source(
        self, session: AsyncSession, admin: Principal, source_id: uuid.UUID, patch: SourcePatch
    ) -> SourceOut:
        source = await self._find(session, admin, source_id)
        sent = patch.model_fields_set
        if "base_url" in sent and patch.base_url is not None:
            source.base_url = await self._checked_url(patch.base_url)
        if "secret" in sent:
            secret = patch.secret
            source.secret_sealed = self.platform.secrets.seal(secret) if secret else None
        for field in ("name", "auth_header", "page_size", "schedule", "enabled"):
            value = getattr(patch, field)
            if field in sent and value is not None:
                setattr(source, field, value)
        await session.flush()
        await session.refresh(source, ["updated_at"])
        return self._out(source)
