"""The CN and DN of a client certificate, as ssl.getpeercert() decodes it."""

from actormq.transport.tls import certificate_identity

PEERCERT = {"subject": ((("countryName", "DE"),), (("organizationName", "Example, Inc."),),
                        (("organizationalUnitName", "devices"),), (("commonName", "sensor-7"),))}


def test_cn_and_dn_in_rfc_4514_order():
    assert certificate_identity(PEERCERT) == ("sensor-7", "CN=sensor-7,OU=devices,O=Example\\, Inc.,C=DE")


def test_no_certificate():
    assert certificate_identity(None) == (None, None)
    assert certificate_identity({}) == (None, None)
