"""Thai QR payment payloads (EMVCo merchant-presented mode): parse and generate.

A merchant's QR is the only thing a citizen's app scans to pay (rule R2), so the platform reads
it strictly: the TLV structure and the CRC are checked before any field is interpreted, and a
payload is accepted only if it is a PromptPay credit transfer (tag 29) or a bill payment (tag 30)
in baht, in Thailand. A national/tax ID proxy must carry a correct check digit, which PromptPay
QR generators do not check.

Payload: fields of two-digit tag, two-digit decimal length (01-99), value; tags 29, 30 and 62
are templates of sub-fields in the same format. The CRC (tag 63, always last) is
CRC-16/CCITT-FALSE over everything before its four hex digits, computed with the standard
library's ``binascii.crc_hqx`` (poly 0x1021, no reflection) seeded with 0xFFFF.

Decisions the format leaves open:
- Point of initiation and amount: DYNAMIC ("12") requires an amount and STATIC ("11") must not
  carry one. This is how PromptPay generators use the two values; a static QR with a fixed
  amount would be a reusable payment request the program has no use for.
- Amounts are decimal strings parsed to satang without floats: no sign, no leading zeros, at
  most two decimals, positive, at most 13 characters. ``generate`` always writes two decimals.
- Field order: ``generate`` writes the top-level fields in ascending tag order with 63 last,
  unless ``ThaiQr.tag_order`` says otherwise. ``parse`` records the order it read, so a payload
  in another order (PromptPay generators put 58 before 53) regenerates byte-identically.
  Sub-fields of 29 and 30 are accepted in any order and written in ascending order; those of 62
  keep their order.
- Unknown top-level tags and unknown sub-tags of 29 and 30 are refused, not dropped.

Reprs hide proxies, bill references and additional data: they may hold personal data.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass, field
from enum import StrEnum

from openloop_identity.domain.thai_id import is_valid_citizen_id, is_valid_juristic_tax_id

PROMPTPAY_CREDIT_AID = "A000000677010111"
BILL_PAYMENT_AID = "A000000677010112"
THAI_BAHT = "764"
THAILAND = "TH"

_TWO_DIGITS = re.compile(r"[0-9]{2}")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+")
_CRC_VALUE = re.compile(r"[0-9A-F]{4}")
_AMOUNT = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]{1,2}))?")
_MAX_AMOUNT_LENGTH = 13
_MAX_SATANG = 999_999_999_999
"""9999999999.99 THB: the largest amount that fits tag 54's 13 characters."""
_MAX_VALUE_LENGTH = 99
_CRC_TAG = "63"
_CRC_HEADER = "6304"
_SUPPORTED_TAGS = frozenset({"00", "01", "29", "30", "53", "54", "58", "62"})


class ThaiQrReason(StrEnum):
    QR_MALFORMED_TLV = "QR_MALFORMED_TLV"
    QR_CRC_MISMATCH = "QR_CRC_MISMATCH"
    QR_MISSING_CRC = "QR_MISSING_CRC"
    QR_UNSUPPORTED_FORMAT = "QR_UNSUPPORTED_FORMAT"
    QR_MISSING_ACCOUNT = "QR_MISSING_ACCOUNT"
    QR_BAD_AMOUNT = "QR_BAD_AMOUNT"
    QR_BAD_CURRENCY = "QR_BAD_CURRENCY"
    QR_BAD_COUNTRY = "QR_BAD_COUNTRY"
    QR_BAD_PROXY = "QR_BAD_PROXY"
    QR_BAD_ID_CHECK_DIGIT = "QR_BAD_ID_CHECK_DIGIT"


class ThaiQrError(ValueError):
    """A Thai QR payload or model is invalid.

    ``reason`` is stable and machine-readable; ``tag`` names the field ("29.02"), or is None when
    the payload as a whole is at fault. The message never contains a field's value.
    """

    def __init__(self, reason: ThaiQrReason, message: str, *, tag: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.tag = tag


class PointOfInitiation(StrEnum):
    STATIC = "11"
    DYNAMIC = "12"


class ProxyKind(StrEnum):
    """Which PromptPay proxy a credit transfer names; the value is its sub-tag in tag 29."""

    MOBILE = "01"
    NATIONAL_ID = "02"
    EWALLET_ID = "03"


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor."""
    return binascii.crc_hqx(data, 0xFFFF)


def _crc_hex(text: str) -> str:
    return f"{crc16_ccitt_false(text.encode('ascii')):04X}"


def _tlv(tag: str, value: str) -> str:
    if not 1 <= len(value) <= _MAX_VALUE_LENGTH:
        raise ThaiQrError(
            ThaiQrReason.QR_MALFORMED_TLV,
            f"tag {tag} must be 1 to {_MAX_VALUE_LENGTH} characters long",
            tag=tag,
        )
    return f"{tag}{len(value):02d}{value}"


def _check_printable(tag: str, value: str, what: str) -> None:
    if _PRINTABLE_ASCII.fullmatch(value) is None:
        raise ThaiQrError(
            ThaiQrReason.QR_MALFORMED_TLV,
            f"tag {tag} ({what}) must be non-empty printable ASCII",
            tag=tag,
        )


def _decode(text: str, parent: str | None = None) -> list[tuple[str, str]]:
    """Split ``text`` into (tag, value) pairs; ``parent`` is the enclosing template's tag."""
    prefix = "" if parent is None else f"{parent}."
    where = "payload" if parent is None else f"tag {parent}"
    fields: list[tuple[str, str]] = []
    seen: set[str] = set()
    position = 0
    while position < len(text):
        tag, length = text[position : position + 2], text[position + 2 : position + 4]
        if _TWO_DIGITS.fullmatch(tag) is None or _TWO_DIGITS.fullmatch(length) is None:
            raise ThaiQrError(
                ThaiQrReason.QR_MALFORMED_TLV,
                f"{where}: expected a two-digit tag and a two-digit length at offset {position}",
                tag=parent,
            )
        start, end = position + 4, position + 4 + int(length)
        if int(length) == 0 or end > len(text):
            raise ThaiQrError(
                ThaiQrReason.QR_MALFORMED_TLV,
                f"tag {prefix}{tag}: length {length} is zero or runs past the end of the {where}",
                tag=prefix + tag,
            )
        if tag in seen:
            raise ThaiQrError(
                ThaiQrReason.QR_MALFORMED_TLV,
                f"tag {prefix}{tag} appears more than once",
                tag=prefix + tag,
            )
        seen.add(tag)
        fields.append((tag, text[start:end]))
        position = end
    return fields


@dataclass(frozen=True)
class PromptPayCredit:
    """A PromptPay credit transfer (tag 29) to one proxy.

    ``value`` is a mobile number in Thai national format ("0801234567"), a 13-digit citizen or
    juristic tax ID with a correct check digit, or a 15-digit e-wallet ID.
    """

    kind: ProxyKind
    value: str = field(repr=False)

    def __post_init__(self) -> None:
        tag = f"29.{self.kind}"
        if self.kind is ProxyKind.MOBILE:
            if re.fullmatch(r"0[0-9]{9}", self.value) is None:
                raise ThaiQrError(
                    ThaiQrReason.QR_BAD_PROXY,
                    f"tag {tag} (mobile) must be a Thai mobile number: 0066 and nine digits",
                    tag=tag,
                )
        elif self.kind is ProxyKind.NATIONAL_ID:
            if re.fullmatch(r"[0-9]{13}", self.value) is None:
                raise ThaiQrError(
                    ThaiQrReason.QR_BAD_PROXY,
                    f"tag {tag} (national or tax ID) must be 13 digits",
                    tag=tag,
                )
            if not (is_valid_citizen_id(self.value) or is_valid_juristic_tax_id(self.value)):
                raise ThaiQrError(
                    ThaiQrReason.QR_BAD_ID_CHECK_DIGIT,
                    f"tag {tag} (national or tax ID) has a wrong check digit",
                    tag=tag,
                )
        elif re.fullmatch(r"[0-9]{15}", self.value) is None:
            raise ThaiQrError(
                ThaiQrReason.QR_BAD_PROXY, f"tag {tag} (e-wallet ID) must be 15 digits", tag=tag
            )

    def template(self) -> str:
        """The value of tag 29: AID, then the proxy in its wire form."""
        wire = "0066" + self.value[1:] if self.kind is ProxyKind.MOBILE else self.value
        return _tlv("00", PROMPTPAY_CREDIT_AID) + _tlv(self.kind.value, wire)


@dataclass(frozen=True)
class BillPayment:
    """A bill payment (tag 30): biller ID (30.01), reference 1 (30.02), optional reference 2."""

    biller_id: str
    ref1: str = field(repr=False)
    ref2: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        required = (("30.01", "biller ID", self.biller_id), ("30.02", "ref 1", self.ref1))
        for tag, what, value in required:
            if not value:
                raise ThaiQrError(
                    ThaiQrReason.QR_MISSING_ACCOUNT, f"tag {tag} ({what}) is required", tag=tag
                )
            _check_printable(tag, value, what)
        if self.ref2 is not None:
            _check_printable("30.03", self.ref2, "ref 2")
        if len(self.template()) > _MAX_VALUE_LENGTH:
            raise ThaiQrError(
                ThaiQrReason.QR_MALFORMED_TLV,
                f"tag 30 would be longer than {_MAX_VALUE_LENGTH} characters",
                tag="30",
            )

    def template(self) -> str:
        """The value of tag 30."""
        ref2 = "" if self.ref2 is None else _tlv("03", self.ref2)
        return (
            _tlv("00", BILL_PAYMENT_AID) + _tlv("01", self.biller_id) + _tlv("02", self.ref1) + ref2
        )


@dataclass(frozen=True)
class ThaiQr:
    """A validated Thai QR payment payload.

    ``amount_satang`` is the amount in satang (1/100 THB). ``additional_data`` holds tag 62's
    sub-fields as (sub-tag, value) pairs in order. ``tag_order`` lists the top-level tags in
    payload order without 63; left empty it becomes ascending order.
    """

    point_of_initiation: PointOfInitiation
    account: PromptPayCredit | BillPayment
    amount_satang: int | None = None
    currency: str = THAI_BAHT
    country: str = THAILAND
    additional_data: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    tag_order: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.currency != THAI_BAHT:
            raise ThaiQrError(
                ThaiQrReason.QR_BAD_CURRENCY, f"tag 53 (currency) must be {THAI_BAHT}", tag="53"
            )
        if self.country != THAILAND:
            raise ThaiQrError(
                ThaiQrReason.QR_BAD_COUNTRY, f"tag 58 (country) must be {THAILAND}", tag="58"
            )
        self._check_amount()
        self._check_additional_data()
        present = sorted(self.fields())
        if not self.tag_order:
            object.__setattr__(self, "tag_order", tuple(present))
        elif sorted(self.tag_order) != present or self.tag_order[0] != "00":
            raise ThaiQrError(
                ThaiQrReason.QR_UNSUPPORTED_FORMAT,
                "tag order must start with 00 and list each present tag except 63 once",
            )

    def _check_amount(self) -> None:
        dynamic = self.point_of_initiation is PointOfInitiation.DYNAMIC
        if self.amount_satang is None:
            if dynamic:
                raise ThaiQrError(
                    ThaiQrReason.QR_BAD_AMOUNT,
                    "tag 54 (amount) is required when tag 01 is 12 (dynamic)",
                    tag="54",
                )
            return
        if not dynamic:
            raise ThaiQrError(
                ThaiQrReason.QR_BAD_AMOUNT,
                "tag 54 (amount) is not allowed when tag 01 is 11 (static)",
                tag="54",
            )
        if isinstance(self.amount_satang, bool) or not 0 < self.amount_satang <= _MAX_SATANG:
            raise ThaiQrError(
                ThaiQrReason.QR_BAD_AMOUNT,
                f"tag 54 (amount) must be between 1 and {_MAX_SATANG} satang",
                tag="54",
            )

    def _check_additional_data(self) -> None:
        seen: set[str] = set()
        for sub_tag, value in self.additional_data:
            tag = f"62.{sub_tag}"
            if _TWO_DIGITS.fullmatch(sub_tag) is None or sub_tag in seen:
                raise ThaiQrError(
                    ThaiQrReason.QR_MALFORMED_TLV,
                    "tag 62 sub-tags must be two digits and unique",
                    tag="62",
                )
            seen.add(sub_tag)
            _check_printable(tag, value, "additional data")
            _tlv(tag, value)
        if len(self._additional_data_template()) > _MAX_VALUE_LENGTH:
            raise ThaiQrError(
                ThaiQrReason.QR_MALFORMED_TLV,
                f"tag 62 would be longer than {_MAX_VALUE_LENGTH} characters",
                tag="62",
            )

    def _additional_data_template(self) -> str:
        return "".join(_tlv(sub_tag, value) for sub_tag, value in self.additional_data)

    def fields(self) -> dict[str, str]:
        """The top-level fields except the CRC, by tag."""
        account_tag = "29" if isinstance(self.account, PromptPayCredit) else "30"
        values = {
            "00": "01",
            "01": self.point_of_initiation.value,
            account_tag: self.account.template(),
            "53": self.currency,
            "58": self.country,
        }
        if self.amount_satang is not None:
            values["54"] = f"{self.amount_satang // 100}.{self.amount_satang % 100:02d}"
        if self.additional_data:
            values["62"] = self._additional_data_template()
        return values


def generate(qr: ThaiQr) -> str:
    """The payload for ``qr``: its fields in ``qr.tag_order``, then the CRC."""
    values = qr.fields()
    body = "".join(_tlv(tag, values[tag]) for tag in qr.tag_order) + _CRC_HEADER
    return body + _crc_hex(body)


def parse(payload: str) -> ThaiQr:
    """Read and validate a Thai QR payload; raises ThaiQrError with the first fault found."""
    if not payload:
        raise ThaiQrError(ThaiQrReason.QR_MALFORMED_TLV, "payload is empty")
    if _PRINTABLE_ASCII.fullmatch(payload) is None:
        raise ThaiQrError(
            ThaiQrReason.QR_MALFORMED_TLV, "payload contains characters other than printable ASCII"
        )
    fields = _decode(payload)
    tags = [tag for tag, _ in fields]
    if _CRC_TAG not in tags:
        raise ThaiQrError(ThaiQrReason.QR_MISSING_CRC, "tag 63 (CRC) is missing", tag="63")
    if tags[-1] != _CRC_TAG or _CRC_VALUE.fullmatch(fields[-1][1]) is None:
        raise ThaiQrError(
            ThaiQrReason.QR_MALFORMED_TLV,
            "tag 63 (CRC) must be the last field, four upper-case hex digits",
            tag="63",
        )
    if fields[-1][1] != _crc_hex(payload[:-4]):
        raise ThaiQrError(
            ThaiQrReason.QR_CRC_MISMATCH,
            "tag 63 (CRC) does not match the payload: it was altered or mis-encoded",
            tag="63",
        )
    return _interpret(dict(fields[:-1]), tuple(tags[:-1]))


def _interpret(values: dict[str, str], order: tuple[str, ...]) -> ThaiQr:
    if order[0] != "00" or values["00"] != "01":
        raise ThaiQrError(
            ThaiQrReason.QR_UNSUPPORTED_FORMAT,
            "tag 00 (payload format) must come first with value 01",
            tag="00",
        )
    for tag in order:
        if tag not in _SUPPORTED_TAGS:
            raise ThaiQrError(
                ThaiQrReason.QR_UNSUPPORTED_FORMAT, f"tag {tag} is not supported", tag=tag
            )
    if values.get("01") not in {p.value for p in PointOfInitiation}:
        raise ThaiQrError(
            ThaiQrReason.QR_UNSUPPORTED_FORMAT,
            "tag 01 (point of initiation) must be 11 (static) or 12 (dynamic)",
            tag="01",
        )
    if "29" in values and "30" in values:
        raise ThaiQrError(
            ThaiQrReason.QR_UNSUPPORTED_FORMAT, "tags 29 and 30 must not both be present"
        )
    if "29" in values:
        account: PromptPayCredit | BillPayment = _parse_promptpay(values["29"])
    elif "30" in values:
        account = _parse_bill_payment(values["30"])
    else:
        raise ThaiQrError(
            ThaiQrReason.QR_MISSING_ACCOUNT,
            "neither tag 29 (PromptPay credit transfer) nor tag 30 (bill payment) is present",
        )
    if "53" not in values:
        raise ThaiQrError(ThaiQrReason.QR_BAD_CURRENCY, "tag 53 (currency) is missing", tag="53")
    if "58" not in values:
        raise ThaiQrError(ThaiQrReason.QR_BAD_COUNTRY, "tag 58 (country) is missing", tag="58")
    return ThaiQr(
        point_of_initiation=PointOfInitiation(values["01"]),
        account=account,
        amount_satang=None if "54" not in values else _parse_amount(values["54"]),
        currency=values["53"],
        country=values["58"],
        additional_data=tuple(_decode(values["62"], "62")) if "62" in values else (),
        tag_order=order,
    )


def _parse_amount(text: str) -> int:
    match = _AMOUNT.fullmatch(text)
    if match is None or len(text) > _MAX_AMOUNT_LENGTH:
        raise ThaiQrError(
            ThaiQrReason.QR_BAD_AMOUNT,
            "tag 54 (amount) must be a decimal such as 4.22: no sign or leading zeros, "
            "at most two decimals, at most 13 characters",
            tag="54",
        )
    baht, satang = match.group(1), match.group(2) or ""
    return int(baht) * 100 + int(satang.ljust(2, "0"))


def _check_aid(parent: str, sub_fields: dict[str, str], aid: str, allowed: set[str]) -> None:
    if sub_fields.get("00") != aid:
        raise ThaiQrError(
            ThaiQrReason.QR_UNSUPPORTED_FORMAT,
            f"tag {parent}.00 (application ID) must be {aid}",
            tag=f"{parent}.00",
        )
    for sub_tag in sub_fields:
        if sub_tag not in allowed:
            raise ThaiQrError(
                ThaiQrReason.QR_UNSUPPORTED_FORMAT,
                f"tag {parent}.{sub_tag} is not supported",
                tag=f"{parent}.{sub_tag}",
            )


def _parse_promptpay(template: str) -> PromptPayCredit:
    sub_fields = dict(_decode(template, "29"))
    _check_aid("29", sub_fields, PROMPTPAY_CREDIT_AID, {"00", *ProxyKind})
    proxies = [ProxyKind(sub_tag) for sub_tag in sub_fields if sub_tag != "00"]
    if not proxies:
        raise ThaiQrError(
            ThaiQrReason.QR_MISSING_ACCOUNT,
            "tag 29 carries no proxy (01 mobile, 02 national or tax ID, 03 e-wallet ID)",
            tag="29",
        )
    if len(proxies) > 1:
        raise ThaiQrError(
            ThaiQrReason.QR_BAD_PROXY, "tag 29 must carry exactly one proxy", tag="29"
        )
    kind = proxies[0]
    value = sub_fields[kind.value]
    if kind is ProxyKind.MOBILE:
        if re.fullmatch(r"0066[0-9]{9}", value) is None:
            raise ThaiQrError(
                ThaiQrReason.QR_BAD_PROXY,
                "tag 29.01 (mobile) must be 0066 followed by nine digits",
                tag="29.01",
            )
        value = "0" + value[4:]
    return PromptPayCredit(kind, value)


def _parse_bill_payment(template: str) -> BillPayment:
    sub_fields = dict(_decode(template, "30"))
    _check_aid("30", sub_fields, BILL_PAYMENT_AID, {"00", "01", "02", "03"})
    return BillPayment(
        biller_id=sub_fields.get("01", ""),
        ref1=sub_fields.get("02", ""),
        ref2=sub_fields.get("03"),
    )
