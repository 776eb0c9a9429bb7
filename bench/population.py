"""Extra funded citizens for load: one wallet per client, so the benchmark measures the
platform rather than contention on a single wallet row."""

from __future__ import annotations

from openloop.identity.v1 import service_pb2 as identity_pb2
from openloop_dev.mesh import MeshLayout
from openloop_dev.seed import HOME_DISTRICT, citizen_details, fund_entitlements, operator
from openloop_identity.domain.thai_id import check_digit


def citizen_id(serial: int) -> str:
    """A valid 13-digit citizen ID for ``serial``."""
    body = f"3{serial:011d}"
    return f"{body}{check_digit(body)}"


async def enrol_funded_citizens(layout: MeshLayout, count: int) -> list[str]:
    async with operator(layout) as op:
        citizens = []
        for serial in range(count):
            reply = await op.identity.EnrollCitizen(
                identity_pb2.EnrollCitizenRequest(
                    request_id=f"bench-citizen-{serial}",
                    citizen_id=citizen_id(serial),
                    home_district_code=HOME_DISTRICT,
                    hosting_participant="participants/bank-a",
                    **citizen_details(layout, citizen_id(serial)),
                )
            )
            citizens.append(reply.citizen.name)
        await fund_entitlements(op, citizens, "participants/bank-a")
        return citizens
