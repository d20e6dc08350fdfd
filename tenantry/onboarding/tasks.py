"""Onboarding's jobs (`kit.jobs`): the welcome mail of a completed onboarding."""

from __future__ import annotations

from procrastinate import JobContext

from tenantry.kit.jobs import TaskSet, platform_of
from tenantry.kit.retries import Backoff
from tenantry.onboarding.welcome import send_welcome as send

tasks = TaskSet()


# The mail server may be away for a while: tries spread over about an hour, then the job
# fails (and the completion shows no `welcome_sent_at`).
@tasks.task(name="send_welcome", queue="mail", retry=Backoff(8, base_s=10, cap_s=900))
async def send_welcome(context: JobContext, session_id: str) -> None:
    await send(platform_of(context), session_id)
