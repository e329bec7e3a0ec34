"""Outbound URL checks: private, link-local and metadata addresses are refused."""

from __future__ import annotations

import pytest

from metric_stream.errors import Forbidden, InvalidInput
from metric_stream.services.outbound import check_outbound_url
from metric_stream.settings import Settings


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/", "http://10.0.0.5/hook", "http://192.168.1.1/",
    "http://172.16.3.4:8080/x", "http://[fe80::1]/", "http://[fd00:ec2::254]/",
    "http://0.0.0.0/", "http://[::ffff:169.254.169.254]/", "http://224.0.0.1/",
])
def test_private_and_metadata_addresses_are_refused(url: str) -> None:
    with pytest.raises(Forbidden):
        check_outbound_url(url, Settings(backend="aws"))


def test_loopback_follows_the_backend_unless_set() -> None:
    assert check_outbound_url("http://127.0.0.1:5678/webhook/x", Settings())
    with pytest.raises(Forbidden, match="loopback"):
        check_outbound_url("http://127.0.0.1:5678/webhook/x", Settings(backend="aws"))
    with pytest.raises(Forbidden, match="loopback"):
        check_outbound_url("http://localhost/", Settings(outbound_allow_loopback=False))


def test_private_addresses_can_be_allowed_but_metadata_never() -> None:
    allowed = Settings(backend="aws", outbound_allow_private=True)
    assert check_outbound_url("http://10.1.2.3/hook", allowed)
    with pytest.raises(Forbidden, match="metadata"):
        check_outbound_url("http://169.254.169.254/", allowed)


def test_public_addresses_pass_and_bad_urls_are_invalid() -> None:
    assert check_outbound_url("https://93.184.216.34/hook", Settings(backend="aws"))
    for bad in ("ftp://example.com/", "not a url", "http:///nohost", "http://h:99999/"):
        with pytest.raises(InvalidInput):
            check_outbound_url(bad, Settings())


def test_an_unresolvable_name_is_refused() -> None:
    with pytest.raises(Forbidden, match="cannot be resolved"):
        check_outbound_url("http://no-such-host.invalid/", Settings())
