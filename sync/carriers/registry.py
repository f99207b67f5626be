"""Which adapter speaks for which carrier code."""

from __future__ import annotations

from scanedge.sync.carriers.base import Carrier, CarrierAccount
from scanedge.sync.carriers.jt import JtCarrier
from scanedge.sync.carriers.sf import SfCarrier
from scanedge.sync.carriers.zto import ZtoCarrier

ADAPTERS: dict[str, type[Carrier]] = {"SF": SfCarrier, "ZTO": ZtoCarrier, "JT": JtCarrier}


def adapter_for(account: CarrierAccount) -> Carrier:
    return ADAPTERS[account.carrier](account)
