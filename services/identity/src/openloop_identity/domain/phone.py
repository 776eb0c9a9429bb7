"""Thai mobile numbers, as aliases and as PromptPay proxies.

Inside Thailand a mobile number is 10 digits starting with 06, 08 or 09. PromptPay QR
payloads carry it in international form without the leading 0 ("0066" + 9 digits);
:mod:`openloop_identity.domain.thai_qr` converts, this module validates the national form.
"""

from __future__ import annotations

import re

_MOBILE = re.compile(r"0[689][0-9]{8}")


def is_valid_mobile_number(number: str) -> bool:
    """A 10-digit Thai mobile number in national form, for example ``0801234567``."""
    return _MOBILE.fullmatch(number) is not None
