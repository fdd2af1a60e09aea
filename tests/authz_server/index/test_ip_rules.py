import ipaddress

import pytest

from authz_server.index.errors import PolicyError
from authz_server.index.ip_rules import IpAllowList, parse_address, parse_network


def _allows(rules, address):
    return IpAllowList(tuple(parse_network(r) for r in rules)).allows(parse_address(address))


@pytest.mark.parametrize(
    "rules,address,allowed",
    [
        (["203.0.113.7"], "203.0.113.7", True),
        (["203.0.113.7"], "203.0.113.8", False),
        (["203.0.113.0/24"], "203.0.113.200", True),
        (["203.0.113.0/24"], "203.0.114.1", False),
        (["10.0.0.0/8", "192.168.1.1"], "192.168.1.1", True),
        (["2001:db8::/32"], "2001:db8:1234::1", True),
        (["2001:db8::/32"], "2001:db9::1", False),
        (["2001:db8::1"], "2001:0db8:0000::0001", True),
        (["2001:db8:abcd:12::/64"], "2001:db8:abcd:12:ffff:ffff:ffff:ffff", True),
        (["2001:db8:abcd:12::/64"], "2001:db8:abcd:13::", False),
        (["203.0.113.0/24"], "::ffff:203.0.113.9", True),
        (["::ffff:203.0.113.0/120"], "203.0.113.9", True),
        (["::ffff:203.0.113.0/120"], "::ffff:203.0.114.9", False),
        (["0.0.0.0/0"], "2001:db8::1", False),
        (["::/0"], "203.0.113.7", False),
        (["203.0.113.7"], "[::ffff:203.0.113.7]:443", True),
        (["203.0.113.7"], "203.0.113.7:8080", True),
        (["203.0.113.7"], "not-an-ip", False),
        (["fe80::/10"], "fe80::1%eth0", False),
        ([], "203.0.113.7", False),
    ],
    ids=[
        "v4-exact", "v4-other", "v4-cidr-in", "v4-cidr-out", "several-rules", "v6-cidr-in", "v6-cidr-out",
        "v6-uncompressed", "v6-64-last", "v6-64-next", "v4-mapped-peer", "v4-mapped-rule", "v4-mapped-rule-out",
        "v4-any-not-v6", "v6-any-not-v4", "bracketed-v6-port", "v4-port", "garbage-peer", "zone-id-refused",
        "empty-list-after-broken-entries-admits-nobody",
    ],
)
def test_ip_allow_list(rules, address, allowed):
    assert _allows(rules, address) is allowed


@pytest.mark.parametrize("text", ["300.1.1.1", "10.0.0.0/33", "example.com", "", "2001:db8::/129"])
def test_malformed_rules_are_refused(text):
    with pytest.raises(PolicyError):
        parse_network(text)


def test_mapped_rule_becomes_ipv4():
    assert parse_network("::ffff:10.0.0.0/104") == ipaddress.IPv4Network("10.0.0.0/8")
