"""User scenarios for locust, runnable on their own:

    locust -f bench/locustfile.py --host http://127.0.0.1:8000

`tenantry bench` runs them headless with 100 users and reports locust's CPU beside the
results. Set BENCH_TOKEN to reuse a token; otherwise each user logs in once at start
(BENCH_EMAIL / BENCH_PASSWORD, default the demo owner of acme).

The seeds' own load tests join this file with the issues that build their endpoints:
`SyncUser` is seed 003's sync API test, `OnboardingUser` seed 000's onboarding test.
"""

from __future__ import annotations

import os

from locust import FastHttpUser, between, task


class _Authenticated(FastHttpUser):
    abstract = True
    auth: dict[str, str]

    def on_start(self) -> None:
        token = os.environ.get("BENCH_TOKEN")
        if not token:
            r = self.client.post(
                "/api/v1/auth/login",
                json={
                    "email": os.environ.get("BENCH_EMAIL", "owner@acme.example"),
                    "password": os.environ.get("BENCH_PASSWORD", "tenantry-demo"),
                },
            )
            token = r.json()["access_token"]
        self.auth = {"Authorization": f"Bearer {token}"}


class TeamUser(_Authenticated):
    """A company member working in the app: profile, settings, the team list."""

    wait_time = between(1, 3)

    @task(4)
    def me(self) -> None:
        self.client.get("/api/v1/users/me", headers=self.auth)

    @task(2)
    def settings(self) -> None:
        self.client.get("/api/v1/tenant/settings", headers=self.auth)

    @task(2)
    def tenant(self) -> None:
        self.client.get("/api/v1/tenant", headers=self.auth)

    @task(2)
    def team(self) -> None:
        self.client.get("/api/v1/users?per_page=20", headers=self.auth)


class SyncUser(_Authenticated):
    """Seed 003's sync API user: three looks at the sync history for each sync started (a
    source already syncing answers with its run, so the triggers pile nothing up)."""

    wait_time = between(1, 3)
    source_id: str

    def on_start(self) -> None:
        super().on_start()
        # `tenantry bench` looks the source up once (BENCH_SOURCE_ID); run alone, each user does.
        source_id = os.environ.get("BENCH_SOURCE_ID")
        if not source_id:
            sources = self.client.get("/api/v1/sync-sources", headers=self.auth).json()
            source_id = sources["items"][0]["id"]
        self.source_id = source_id

    @task(3)
    def history(self) -> None:
        self.client.get("/api/v1/syncs?page=1&per_page=20", headers=self.auth)

    @task(1)
    def trigger(self) -> None:
        self.client.post("/api/v1/sync", json={"source_id": self.source_id}, headers=self.auth)


class OnboardingUser(FastHttpUser):
    """Seed 000's onboarding load test, as it is: visitors (no login) posting a company
    profile and reading the suite catalog."""

    wait_time = between(1, 3)

    @task
    def create_company_profile(self) -> None:
        self.client.post(
            "/api/v1/onboarding/company-profile",
            json={
                "company_name": "Test Corp",
                "industry": "technology",
                "company_size": "startup",
                "primary_challenges": ["marketing_optimization"],
                "current_tools": [],
                "goals": ["increase_roi"],
            },
        )

    @task
    def get_suite_catalog(self) -> None:
        self.client.get("/api/v1/onboarding/suite-catalog")
