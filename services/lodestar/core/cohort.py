"""CohortId: a stable bucket 0-99 per endpoint id.

Pinpoint assigns ``CohortId`` at random when it creates an endpoint. Lodestar
derives it instead, so every worker, replay and re-import agrees without
storing or coordinating anything:

    cohort = int.from_bytes(sha256(endpoint_id as UTF-8)[:8], "big") % 100

The first 8 bytes of SHA-256 are uniform over 0..2**64-1; reducing modulo 100
biases a cohort by at most 100 / 2**64, i.e. not measurably. The value
depends on the endpoint id only (not the app), so an id keeps its cohort when
an app is migrated. Treatments and holdouts that must differ per campaign
should mix the campaign id into their own allocation on top of this.
"""

from __future__ import annotations

import hashlib

COHORT_COUNT = 100


def cohort_id(endpoint_id: str) -> int:
    """The endpoint's cohort, an integer 0-99 that never changes for this id."""
    digest = hashlib.sha256(endpoint_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % COHORT_COUNT
