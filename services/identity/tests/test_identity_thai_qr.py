"""Thai QR payloads: the domain document's vectors, every rejection reason, and round-trips."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openloop_identity.domain.thai_id import check_digit
from openloop_identity.domain.thai_qr import (
    BillPayment,
    PointOfInitiation,
    PromptPayCredit,
    ProxyKind,
    ThaiQr,
    ThaiQrError,
    ThaiQrReason,
    crc16_ccitt_false,
    generate,
    parse,
)

STATIC = PointOfInitiation.STATIC
DYNAMIC = PointOfInitiation.DYNAMIC
PROMPTPAY_ORDER = ("00", "01", "29", "58", "53")
"""The order PromptPay generators write, as in the first three vectors: 58 before 53."""

MOBILE_STATIC = "00020101021129370016A000000677010111011300668012345675802TH530376463046197"
ID_STATIC = "00020101021129370016A000000677010111021311111111111115802TH530376463047B5A"
MOBILE_DYNAMIC = (
    "00020101021229370016A000000677010111011300660000000005802TH530376454044.226304E469"
)
BILL_PAYMENT = (
    "00020101021130620016A000000677010112011301122334455660211CUSTOMER0010306INV001"
    "53037645802TH62070703SCB6304780E"
)
ID_STATIC_CORRECTED = "00020101021129370016A000000677010111021311111111111195802TH530376463048A35"
"""ID_STATIC with the ID's check digit corrected to 9 and the CRC recomputed (not from the
domain document: derived here, with the CRC verified against the other vectors)."""

VECTORS = [
    pytest.param(
        MOBILE_STATIC,
        ThaiQr(STATIC, PromptPayCredit(ProxyKind.MOBILE, "0801234567"), tag_order=PROMPTPAY_ORDER),
        id="mobile-static",
    ),
    pytest.param(
        MOBILE_DYNAMIC,
        ThaiQr(
            DYNAMIC,
            PromptPayCredit(ProxyKind.MOBILE, "0000000000"),
            amount_satang=422,
            tag_order=(*PROMPTPAY_ORDER, "54"),
        ),
        id="mobile-dynamic",
    ),
    pytest.param(
        BILL_PAYMENT,
        ThaiQr(
            STATIC,
            BillPayment("0112233445566", "CUSTOMER001", "INV001"),
            additional_data=(("07", "SCB"),),
        ),
        id="bill-payment",
    ),
    pytest.param(
        ID_STATIC_CORRECTED,
        ThaiQr(
            STATIC,
            PromptPayCredit(ProxyKind.NATIONAL_ID, "1111111111119"),
            tag_order=PROMPTPAY_ORDER,
        ),
        id="id-static-corrected",
    ),
]


def with_crc(body: str) -> str:
    """``body`` (ending before tag 63) with a correct CRC field appended."""
    body += "6304"
    return body + f"{crc16_ccitt_false(body.encode('ascii')):04X}"


def reason_of(payload: str) -> ThaiQrReason:
    with pytest.raises(ThaiQrError) as caught:
        parse(payload)
    return caught.value.reason


# -- vectors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("payload", "model"), VECTORS)
def test_vector_parses_to_its_fields(payload: str, model: ThaiQr) -> None:
    assert parse(payload) == model


@pytest.mark.parametrize(("payload", "model"), VECTORS)
def test_vector_regenerates_byte_identically(payload: str, model: ThaiQr) -> None:
    assert generate(model) == payload
    assert generate(parse(payload)) == payload


def test_vector_fields_read_as_documented() -> None:
    mobile = parse(MOBILE_DYNAMIC)
    assert mobile.amount_satang == 422
    assert mobile.point_of_initiation is DYNAMIC
    assert mobile.currency == "764"
    assert mobile.country == "TH"
    assert parse(MOBILE_STATIC).account == PromptPayCredit(ProxyKind.MOBILE, "0801234567")
    bill = parse(BILL_PAYMENT).account
    assert isinstance(bill, BillPayment)
    assert (bill.biller_id, bill.ref1, bill.ref2) == ("0112233445566", "CUSTOMER001", "INV001")


def test_bill_payment_vector_is_in_ascending_order_and_the_others_are_not() -> None:
    assert parse(BILL_PAYMENT).tag_order == ("00", "01", "30", "53", "58", "62")
    assert parse(MOBILE_STATIC).tag_order == PROMPTPAY_ORDER


def test_ascending_order_is_the_default() -> None:
    qr = ThaiQr(STATIC, PromptPayCredit(ProxyKind.MOBILE, "0801234567"))
    assert qr.tag_order == ("00", "01", "29", "53", "58")
    assert generate(qr) == with_crc(
        "000201010211" + "29370016A00000067701011101130066801234567" + "5303764" + "5802TH"
    )


def test_documented_id_vector_is_refused_for_its_check_digit() -> None:
    """The domain document's ID vector uses 1111111111111, whose check digit should be 9.

    Its TLV and CRC are sound (the same payload with 9 round-trips above), but the platform must
    check the digit PromptPay generators skip, so the payload is refused and cannot be generated.
    """
    with pytest.raises(ThaiQrError) as caught:
        parse(ID_STATIC)
    assert caught.value.reason is ThaiQrReason.QR_BAD_ID_CHECK_DIGIT
    assert caught.value.tag == "29.02"
    assert "1111111111111" not in str(caught.value)
    with pytest.raises(ThaiQrError, match="check digit"):
        PromptPayCredit(ProxyKind.NATIONAL_ID, "1111111111111")
    assert (
        ID_STATIC.replace("11111111111115802", "11111111111195802")[:-4]
        == (ID_STATIC_CORRECTED[:-4])
    )


# -- CRC -------------------------------------------------------------------------------------


def test_crc_check_value() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1


def test_crc_of_empty_input_is_the_initial_value() -> None:
    assert crc16_ccitt_false(b"") == 0xFFFF


def test_wrong_crc_is_a_mismatch() -> None:
    assert reason_of(MOBILE_STATIC[:-4] + "6198") is ThaiQrReason.QR_CRC_MISMATCH


def test_lower_case_crc_is_refused() -> None:
    assert reason_of(BILL_PAYMENT[:-4] + "780e") is ThaiQrReason.QR_MALFORMED_TLV


def test_missing_crc() -> None:
    assert reason_of(MOBILE_STATIC[:-8]) is ThaiQrReason.QR_MISSING_CRC


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(
            "6304ABCD" + "000201010211" + "29370016A00000067701011101130066801234567",
            id="crc-not-last",
        ),
        pytest.param(MOBILE_STATIC[:-8] + "630561970", id="crc-length-05"),
        pytest.param(MOBILE_STATIC[:-8] + "6304619G", id="crc-not-hex"),
    ],
)
def test_misplaced_or_misshapen_crc_is_malformed(payload: str) -> None:
    assert reason_of(payload) is ThaiQrReason.QR_MALFORMED_TLV


# -- TLV -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("", id="empty"),
        pytest.param(MOBILE_STATIC[:-1], id="truncated-value"),
        pytest.param(MOBILE_STATIC + "63", id="truncated-header"),
        pytest.param("0A02" + MOBILE_STATIC[4:], id="non-digit-tag"),
        pytest.param("000X" + MOBILE_STATIC[4:], id="non-digit-length"),
        pytest.param("0099" + MOBILE_STATIC[4:], id="length-beyond-end"),
        pytest.param("0000" + MOBILE_STATIC, id="zero-length"),
        pytest.param("01021100020101021129", id="no-crc-and-truncated"),
        pytest.param(MOBILE_STATIC.replace("5802TH", "5802ไท"), id="non-ascii"),
        pytest.param(MOBILE_STATIC.replace("5802TH", "5802T\n"), id="control-character"),
        pytest.param(
            with_crc("000201010211010211" + "29370016A00000067701011101130066801234567"),
            id="duplicate-top-level-tag",
        ),
        pytest.param(
            with_crc(
                "000201010211"
                + "29540016A0000006770101110113006680123456701130066801234567"
                + "5802TH5303764"
            ),
            id="duplicate-sub-tag",
        ),
        pytest.param(
            with_crc(
                "000201010211" + "29370016A00000067701011101130066801234567" + "5802TH5303764"
                "620507033"
            ),
            id="truncated-sub-tlv",
        ),
    ],
)
def test_malformed_tlv(payload: str) -> None:
    assert reason_of(payload) is ThaiQrReason.QR_MALFORMED_TLV


# -- semantic errors -------------------------------------------------------------------------

PROMPTPAY_MOBILE = "29370016A00000067701011101130066801234567"


@pytest.mark.parametrize(
    ("body", "reason", "tag"),
    [
        pytest.param(
            "000202" + "010211" + PROMPTPAY_MOBILE + "5303764" + "5802TH",
            ThaiQrReason.QR_UNSUPPORTED_FORMAT,
            "00",
            id="format-02",
        ),
        pytest.param(
            "010211" + "000201" + PROMPTPAY_MOBILE + "5303764" + "5802TH",
            ThaiQrReason.QR_UNSUPPORTED_FORMAT,
            "00",
            id="format-not-first",
        ),
        pytest.param(
            "000201" + "010213" + PROMPTPAY_MOBILE + "5303764" + "5802TH",
            ThaiQrReason.QR_UNSUPPORTED_FORMAT,
            "01",
            id="initiation-13",
        ),
        pytest.param(
            "000201" + PROMPTPAY_MOBILE + "5303764" + "5802TH",
            ThaiQrReason.QR_UNSUPPORTED_FORMAT,
            "01",
            id="initiation-missing",
        ),
        pytest.param(
            "000201" + "010211" + PROMPTPAY_MOBILE + "5303764" + "5802TH" + "5904SHOP",
            ThaiQrReason.QR_UNSUPPORTED_FORMAT,
            "59",
            id="unknown-tag",
        ),
        pytest.param(
            "000201" + "010211" + "29370016A00000067701011201130066801234567" + "53037645802TH",
            ThaiQrReason.QR_UNSUPPORTED_FORMAT,
            "29.00",
            id="wrong-aid",
        ),
        pytest.param(
            "000201" + "010211" + "29370016A00000067701011104130066801234567" + "53037645802TH",
            ThaiQrReason.QR_UNSUPPORTED_FORMAT,
            "29.04",
            id="unknown-proxy-sub-tag",
        ),
        pytest.param(
            "000201" + "010211" + "5303764" + "5802TH",
            ThaiQrReason.QR_MISSING_ACCOUNT,
            None,
            id="no-account",
        ),
        pytest.param(
            "000201" + "010211" + "29200016A000000677010111" + "5303764" + "5802TH",
            ThaiQrReason.QR_MISSING_ACCOUNT,
            "29",
            id="no-proxy",
        ),
        pytest.param(
            "000201" + "010211" + "30370016A00000067701011201130112233445566" + "53037645802TH",
            ThaiQrReason.QR_MISSING_ACCOUNT,
            "30.02",
            id="bill-without-ref1",
        ),
        pytest.param(
            "000201" + "010211" + PROMPTPAY_MOBILE + "5802TH",
            ThaiQrReason.QR_BAD_CURRENCY,
            "53",
            id="currency-missing",
        ),
        pytest.param(
            "000201" + "010211" + PROMPTPAY_MOBILE + "5303840" + "5802TH",
            ThaiQrReason.QR_BAD_CURRENCY,
            "53",
            id="currency-usd",
        ),
        pytest.param(
            "000201" + "010211" + PROMPTPAY_MOBILE + "5303764",
            ThaiQrReason.QR_BAD_COUNTRY,
            "58",
            id="country-missing",
        ),
        pytest.param(
            "000201" + "010211" + PROMPTPAY_MOBILE + "5303764" + "5802LA",
            ThaiQrReason.QR_BAD_COUNTRY,
            "58",
            id="country-laos",
        ),
        pytest.param(
            "000201" + "010211" + "29370016A00000067701011101130085801234567" + "53037645802TH",
            ThaiQrReason.QR_BAD_PROXY,
            "29.01",
            id="mobile-not-0066",
        ),
        pytest.param(
            "000201" + "010211" + "29360016A0000006770101110112006680123456" + "53037645802TH",
            ThaiQrReason.QR_BAD_PROXY,
            "29.01",
            id="mobile-too-short",
        ),
        pytest.param(
            "000201" + "010211" + "29360016A0000006770101110212134595159767" + "53037645802TH",
            ThaiQrReason.QR_BAD_PROXY,
            "29.02",
            id="id-twelve-digits",
        ),
        pytest.param(
            "000201" + "010211" + "29370016A000000677010111031312345678901235303764" + "5802TH",
            ThaiQrReason.QR_BAD_PROXY,
            "29.03",
            id="ewallet-thirteen-digits",
        ),
        pytest.param(
            "000201" + "010211" + "295400"
            "16A00000067701011101130066801234567" + "02131345951597671" + "5303764" + "5802TH",
            ThaiQrReason.QR_BAD_PROXY,
            "29",
            id="two-proxies",
        ),
        pytest.param(
            "000201" + "010211" + "29370016A00000067701011102131101700230705" + "53037645802TH",
            ThaiQrReason.QR_BAD_ID_CHECK_DIGIT,
            "29.02",
            id="citizen-id-check-digit",
        ),
        pytest.param(
            "000201" + "010211" + "29370016A00000067701011102130105536000314" + "53037645802TH",
            ThaiQrReason.QR_BAD_ID_CHECK_DIGIT,
            "29.02",
            id="juristic-id-check-digit",
        ),
    ],
)
def test_semantic_rejections(body: str, reason: ThaiQrReason, tag: str | None) -> None:
    with pytest.raises(ThaiQrError) as caught:
        parse(with_crc(body))
    assert caught.value.reason is reason
    assert caught.value.tag == tag
    if tag is not None:
        assert f"tag {tag}" in str(caught.value)


def test_error_messages_do_not_carry_the_id() -> None:
    body = "000201010211" + "29370016A00000067701011102131101700230705" + "5303764" + "5802TH"
    with pytest.raises(ThaiQrError) as caught:
        parse(with_crc(body))
    assert "1101700230705" not in str(caught.value)
    assert "1101700230705" not in repr(caught.value)


def test_reprs_hide_personal_data() -> None:
    qr = parse(MOBILE_STATIC)
    assert "801234567" not in repr(qr)
    assert "CUSTOMER001" not in repr(parse(BILL_PAYMENT))


def test_valid_ids_are_accepted_as_proxies() -> None:
    for number in ("1345951597671", "0105536000313"):
        body = "000201010211" + f"29370016A0000006770101110213{number}" + "5303764" + "5802TH"
        account = parse(with_crc(body)).account
        assert account == PromptPayCredit(ProxyKind.NATIONAL_ID, number)


def test_ewallet_proxy_round_trips() -> None:
    body = "000201010211" + "29390016A0000006770101110315123456789012345" + "5303764" + "5802TH"
    payload = with_crc(body)
    assert parse(payload).account == PromptPayCredit(ProxyKind.EWALLET_ID, "123456789012345")
    assert generate(parse(payload)) == payload


def test_both_accounts_are_refused() -> None:
    bill = "30370016A00000067701011201130112233445566" + "0203REF"
    bill = f"30{len(bill) - 4:02d}" + bill[4:]
    body = "000201010211" + PROMPTPAY_MOBILE + bill + "5303764" + "5802TH"
    assert reason_of(with_crc(body)) is ThaiQrReason.QR_UNSUPPORTED_FORMAT


def test_sub_fields_of_29_are_accepted_in_any_order_and_written_ascending() -> None:
    swapped = "29370113006680123456700" + "16A000000677010111"
    payload = with_crc("000201010211" + swapped + "5303764" + "5802TH")
    qr = parse(payload)
    assert qr.account == PromptPayCredit(ProxyKind.MOBILE, "0801234567")
    assert PROMPTPAY_MOBILE in generate(qr)


# -- amounts ---------------------------------------------------------------------------------


def dynamic_with_amount(amount: str) -> str:
    return with_crc(
        "000201010212" + PROMPTPAY_MOBILE + "5303764" + f"54{len(amount):02d}{amount}" + "5802TH"
    )


@pytest.mark.parametrize(
    ("amount", "satang"),
    [
        ("4.22", 422),
        ("4.2", 420),
        ("4", 400),
        ("0.01", 1),
        ("10000", 1_000_000),
        ("9999999999.99", 999_999_999_999),
    ],
)
def test_amounts_parse_exactly_to_satang(amount: str, satang: int) -> None:
    assert parse(dynamic_with_amount(amount)).amount_satang == satang


@pytest.mark.parametrize(
    "amount",
    [
        "0",
        "0.00",
        "-1.00",
        "+1.00",
        "4.222",
        "4.",
        ".50",
        "04.22",
        "1e3",
        "4,22",
        " 4.22",
        "99999999999.99",
    ],
)
def test_bad_amounts_are_refused(amount: str) -> None:
    assert reason_of(dynamic_with_amount(amount)) is ThaiQrReason.QR_BAD_AMOUNT


def test_generated_amount_has_two_decimals() -> None:
    assert "54044.00" in generate(parse(dynamic_with_amount("4")))


def test_dynamic_requires_an_amount() -> None:
    payload = with_crc("000201010212" + PROMPTPAY_MOBILE + "5303764" + "5802TH")
    assert reason_of(payload) is ThaiQrReason.QR_BAD_AMOUNT


def test_static_must_not_carry_an_amount() -> None:
    payload = with_crc("000201010211" + PROMPTPAY_MOBILE + "5303764" + "54044.22" + "5802TH")
    assert reason_of(payload) is ThaiQrReason.QR_BAD_AMOUNT


def test_model_refuses_out_of_range_amounts() -> None:
    mobile = PromptPayCredit(ProxyKind.MOBILE, "0801234567")
    for amount in (0, -1, 1_000_000_000_000):
        with pytest.raises(ThaiQrError) as caught:
            ThaiQr(DYNAMIC, mobile, amount_satang=amount)
        assert caught.value.reason is ThaiQrReason.QR_BAD_AMOUNT


# -- model -----------------------------------------------------------------------------------


def test_model_refuses_a_tag_order_that_does_not_match_its_fields() -> None:
    mobile = PromptPayCredit(ProxyKind.MOBILE, "0801234567")
    for order in (("00", "01", "29", "53"), ("01", "00", "29", "53", "58")):
        with pytest.raises(ThaiQrError, match="tag order"):
            ThaiQr(STATIC, mobile, tag_order=order)


def test_bill_payment_that_does_not_fit_tag_30_is_refused() -> None:
    with pytest.raises(ThaiQrError) as caught:
        BillPayment("0112233445566", "R" * 40, "S" * 40)
    assert caught.value.reason is ThaiQrReason.QR_MALFORMED_TLV


def test_additional_data_must_be_well_formed() -> None:
    mobile = PromptPayCredit(ProxyKind.MOBILE, "0801234567")
    for data in ((("7", "SCB"),), (("07", "A"), ("07", "B")), (("07", ""),), (("07", "X" * 96),)):
        with pytest.raises(ThaiQrError) as caught:
            ThaiQr(STATIC, mobile, additional_data=data)
        assert caught.value.reason is ThaiQrReason.QR_MALFORMED_TLV


# -- properties ------------------------------------------------------------------------------

digits = string.digits
printable = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1)


@st.composite
def national_ids(draw: st.DrawFn) -> str:
    first_twelve = draw(st.text(alphabet=digits, min_size=12, max_size=12))
    return first_twelve + str(check_digit(first_twelve))


proxies = st.one_of(
    st.builds(
        PromptPayCredit,
        st.just(ProxyKind.MOBILE),
        st.text(alphabet=digits, min_size=9, max_size=9).map(lambda rest: "0" + rest),
    ),
    st.builds(PromptPayCredit, st.just(ProxyKind.NATIONAL_ID), national_ids()),
    st.builds(
        PromptPayCredit,
        st.just(ProxyKind.EWALLET_ID),
        st.text(alphabet=digits, min_size=15, max_size=15),
    ),
)
bill_payments = st.builds(
    BillPayment,
    printable.map(lambda s: s[:20]),
    printable.map(lambda s: s[:20]),
    st.none() | printable.map(lambda s: s[:20]),
)
additional_data = st.lists(
    st.tuples(st.text(alphabet=digits, min_size=2, max_size=2), printable.map(lambda s: s[:10])),
    max_size=5,
    unique_by=lambda pair: pair[0],
).map(tuple)


@st.composite
def thai_qrs(draw: st.DrawFn) -> ThaiQr:
    dynamic = draw(st.booleans())
    account = draw(st.one_of(proxies, bill_payments))
    qr = ThaiQr(
        DYNAMIC if dynamic else STATIC,
        account,
        amount_satang=draw(st.integers(1, 999_999_999_999)) if dynamic else None,
        additional_data=draw(additional_data),
    )
    rest = draw(st.permutations(qr.tag_order[1:]))
    return ThaiQr(
        qr.point_of_initiation,
        qr.account,
        amount_satang=qr.amount_satang,
        additional_data=qr.additional_data,
        tag_order=("00", *rest),
    )


@given(thai_qrs())
def test_generated_payloads_parse_back_to_the_model(qr: ThaiQr) -> None:
    assert parse(generate(qr)) == qr


@given(thai_qrs(), st.data())
def test_any_single_character_change_is_refused(qr: ThaiQr, data: st.DataObject) -> None:
    payload = generate(qr)
    position = data.draw(st.integers(0, len(payload) - 1))
    replacement = data.draw(
        st.characters(min_codepoint=0x00, max_codepoint=0x17F).filter(
            lambda c: c != payload[position]
        )
    )
    changed = payload[:position] + replacement + payload[position + 1 :]
    with pytest.raises(ThaiQrError) as caught:
        parse(changed)
    assert caught.value.reason in {
        ThaiQrReason.QR_CRC_MISMATCH,
        ThaiQrReason.QR_MALFORMED_TLV,
        ThaiQrReason.QR_MISSING_CRC,
    }


@pytest.mark.parametrize("payload", [MOBILE_STATIC, MOBILE_DYNAMIC, BILL_PAYMENT])
def test_every_single_character_change_of_a_vector_is_refused(payload: str) -> None:
    alphabet = [chr(c) for c in range(0x20, 0x7F)]
    for position, original in enumerate(payload):
        for replacement in alphabet:
            if replacement == original:
                continue
            with pytest.raises(ThaiQrError):
                parse(payload[:position] + replacement + payload[position + 1 :])
