"""The citizen-ID token: keyed, deterministic, and never the ID itself."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from openloop_identity.config import IdentitySettings
from openloop_identity.pii import CitizenIdTokenizer

KEY_A = SecretStr("a" * 32)
KEY_B = SecretStr("b" * 32)


def test_token_is_deterministic_and_depends_on_the_key() -> None:
    first = CitizenIdTokenizer(KEY_A).token("1345951597671")
    assert first == CitizenIdTokenizer(KEY_A).token("1345951597671")
    assert first != CitizenIdTokenizer(KEY_B).token("1345951597671")
    assert first != CitizenIdTokenizer(KEY_A).token("1101700230708")
    assert len(first) == 64
    assert "1345951597671" not in first


def test_tokenizer_does_not_show_its_key() -> None:
    assert "a" * 32 not in repr(CitizenIdTokenizer(KEY_A))


def test_settings_flag_the_development_key_and_refuse_short_keys() -> None:
    assert IdentitySettings().uses_development_hmac_key
    assert not IdentitySettings(citizen_id_hmac_key=KEY_A).uses_development_hmac_key
    assert "a" * 32 not in repr(IdentitySettings(citizen_id_hmac_key=KEY_A))
    with pytest.raises(ValidationError, match="at least 32"):
        IdentitySettings(citizen_id_hmac_key=SecretStr("short"))


def test_settings_read_the_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENLOOP_IDENTITY_CITIZEN_ID_HMAC_KEY", "k" * 40)
    settings = IdentitySettings()
    assert settings.citizen_id_hmac_key.get_secret_value() == "k" * 40
    assert settings.port == 50051
