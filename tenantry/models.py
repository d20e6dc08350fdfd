"""Every table, imported once so Alembic and the tests see the whole metadata."""

from tenantry.api_keys.models import ApiKey
from tenantry.audit.models import AuditEvent
from tenantry.crm.models import Call, Customer, Lead, LeadStatusHistory, Message
from tenantry.kit.models import Base
from tenantry.kit.state import StateEntry
from tenantry.onboarding.models import OnboardingCompletion, OnboardingEvent, OnboardingQuote
from tenantry.sync.models import SyncRun, SyncSource
from tenantry.tenants.models import Tenant, TenantSettings
from tenantry.territories.models import Region, Team, TeamMember, Zone
from tenantry.users.models import User
from tenantry.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Base",
    "Call",
    "Customer",
    "Lead",
    "LeadStatusHistory",
    "Message",
    "OnboardingCompletion",
    "OnboardingEvent",
    "OnboardingQuote",
    "Region",
    "StateEntry",
    "SyncRun",
    "SyncSource",
    "Team",
    "TeamMember",
    "Tenant",
    "TenantSettings",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "Zone",
]
