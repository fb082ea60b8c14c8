"""The soak's traffic (``benchmarks/soak.py``): a dispatch centre's mix, by weight.

Single lookups dominate, then fastest-responder calls; batches, isochrones, coverage (live
too) and scenarios come now and then, as from dispatch consoles and planners' notebooks.
The key comes from ``GEOSERVICE_KEY``.
"""

from __future__ import annotations

import json
import os
import random

from locust import HttpUser, between, task

KEY = os.environ["GEOSERVICE_KEY"]
BATCH = json.dumps(
    {
        "points": [
            [random.uniform(114.25, 114.6), random.uniform(22.95, 23.3)] for _ in range(10_000)
        ]
    }
)
SCENARIO = json.dumps({"add_points": [[114.43, 23.09]], "minutes": [1, 3, 5]})


class Dispatch(HttpUser):
    wait_time = between(0.01, 0.05)

    def on_start(self) -> None:
        self.client.headers.update({"Authorization": f"Bearer {KEY}"})

    @task(60)
    def single(self) -> None:
        lon, lat = random.uniform(114.3, 114.55), random.uniform(23.0, 23.25)
        self.client.get(f"/v1/locate?lon={lon:.6f}&lat={lat:.6f}", name="/v1/locate GET")

    @task(3)
    def batch(self) -> None:
        self.client.post(
            "/v1/locate",
            data=BATCH,
            name="/v1/locate POST 10k",
            headers={"content-type": "application/json"},
        )

    @task(6)
    def dispatch(self) -> None:
        lon, lat = random.uniform(114.36, 114.46), random.uniform(23.05, 23.15)
        self.client.get(f"/v1/dispatch?lon={lon:.6f}&lat={lat:.6f}&k=3", name="/v1/dispatch")

    @task(1)
    def live(self) -> None:
        self.client.get("/v1/coverage/live?minutes=1,3,5", name="/v1/coverage/live")

    @task(3)
    def isochrone(self) -> None:
        lon, lat = random.uniform(114.38, 114.45), random.uniform(23.08, 23.13)
        self.client.get(
            f"/v1/isochrones?lon={lon:.5f}&lat={lat:.5f}&minutes=1,3,5", name="/v1/isochrones"
        )

    @task(1)
    def coverage(self) -> None:
        self.client.get("/v1/coverage/response?minutes=1,3,5", name="/v1/coverage/response")

    @task(1)
    def scenario(self) -> None:
        self.client.post(
            "/v1/coverage/scenario",
            data=SCENARIO,
            name="/v1/coverage/scenario",
            headers={"content-type": "application/json"},
        )
