"""The Kubernetes DNS specification's answers (kubernetes/dns docs/specification.md, schema 1.1.0),
asked with dig over UDP and over TCP against data/cluster.json (namespace shop, zone cluster.local).

data/cluster.json, in short:
  web     headless, port http 80/TCP; ready web-0 10.250.1.10, web-1 10.250.1.11 (in both slices),
          web-2 10.250.1.12; not ready web-3 10.250.1.13
  db      headless, no hostnames: 10.250.2.5, 10.250.2.6; port postgres 5432/TCP
  api     ClusterIP 10.96.5.10; ports http 80 (targetPort 8080), grpc 9090, unnamed 8443
  dual    ClusterIP 10.96.5.20 + fd00:10:96::5:20; port http 80
  search  ExternalName www.example.com
  idle    headless, only a not-ready endpoint (idle-0 10.250.5.1)
  peers   headless, publishNotReadyAddresses; peers-0 10.250.6.1 ready, peers-1 10.250.6.2 not ready
  big     headless, 60 ready endpoints 10.250.3.1-60 (truncation tests)
  pods6   headless dual-stack: p-0 at 10.250.7.1 (IPv4 slice) and fd00:250::7:1 (IPv6 slice)
  calm    headless: 10.250.8.1 with empty conditions (= ready), 10.250.8.2 not ready
  ghost   only an EndpointSlice (10.250.9.1), no Service
  lb      LoadBalancer, ClusterIP 10.96.5.40, port https 443
  kube-system/kube-dns  ClusterIP 10.96.0.10; dns 53/UDP, dns-tcp 53/TCP, metrics 9153/TCP
"""

import pytest

from harness import DEFAULT_TTL, NS, ZONE, dig, fqdn

NS_ = f"{NS}.svc.{ZONE}"  # the namespace's domain


@pytest.fixture(params=[False, True], ids=["udp", "tcp"])
def tcp(request):
    return request.param


def ask(server, name, rtype="A", *opts, tcp=False, reverse=False):
    r = dig(server.port, name if reverse else fqdn(name), rtype, *opts, tcp=tcp, reverse=reverse)
    assert r.status is not None, f"no reply (daemon alive: {server.alive()}):\n{r.describe()}"
    assert not r.warnings, f"dig complained about the reply:\n{r.describe()}"
    assert "qr" in r.flags, r.describe()
    if tcp:
        assert not r.retried_tcp
    return r


def expect_cluster(r, status="NOERROR"):
    """An authoritative cluster answer: rcode, AA, TTL == --ttl on every answer record."""
    assert r.status == status, r.describe()
    assert "aa" in r.flags, "cluster answers must be authoritative (AA):\n" + r.describe()
    assert "tc" not in r.flags, r.describe()
    for rec in r.answer:
        assert rec.ttl == DEFAULT_TTL, f"TTL {rec.ttl} != {DEFAULT_TTL}:\n{r.describe()}"
    return r


def expect_negative(r, status):
    """NXDOMAIN or NODATA: no answer, the zone's SOA in the authority section."""
    expect_cluster(r, status)
    assert r.answer == [], r.describe()
    soas = [a for a in r.authority if a.rtype == "SOA"]
    assert len(soas) == 1, "negative answers carry the zone SOA in authority:\n" + r.describe()
    assert soas[0].name.lower() == ZONE + ".", r.describe()


def owners(r, rtype):
    return {a.name for a in r.answer if a.rtype == rtype}


# ---- 2.2 schema version ---------------------------------------------------------------------

def test_dns_version_txt(server, tcp):
    r = expect_cluster(ask(server, f"dns-version.{ZONE}", "TXT", tcp=tcp))
    assert r.rdatas("TXT") == ['"1.1.0"'], r.describe()


# ---- 2.3 ClusterIP --------------------------------------------------------------------------

def test_clusterip_a(server, tcp):
    r = expect_cluster(ask(server, "api", "A", tcp=tcp))
    assert r.rdatas("A") == ["10.96.5.10"], r.describe()
    assert owners(r, "A") == {fqdn("api")}


def test_clusterip_other_namespace(server, tcp):
    r = expect_cluster(ask(server, f"kube-dns.kube-system.svc.{ZONE}", "A", tcp=tcp))
    assert r.rdatas("A") == ["10.96.0.10"], r.describe()


def test_clusterip_dual_stack_a(server, tcp):
    r = expect_cluster(ask(server, "dual", "A", tcp=tcp))
    assert r.rdatas("A") == ["10.96.5.20"], r.describe()


def test_clusterip_dual_stack_aaaa(server, tcp):
    r = expect_cluster(ask(server, "dual", "AAAA", tcp=tcp))
    assert r.rdatas("AAAA") == ["fd00:10:96::5:20"], r.describe()
    assert r.rdatas("A") == [], r.describe()


def test_clusterip_srv_named_port(server, tcp):
    r = expect_cluster(ask(server, f"_http._tcp.api.{NS_}", "SRV", tcp=tcp))
    srv = [a.rdata.split() for a in r.answer if a.rtype == "SRV"]
    assert len(srv) == 1, r.describe()
    prio, weight, port, target = srv[0]
    assert int(port) == 80, "SRV carries the service port, not the targetPort:\n" + r.describe()
    assert target == fqdn("api"), r.describe()
    # "The Additional section of the response may include the Service A record": the contract
    # for hdnsd says it does.
    assert r.rdatas("A", "additional") == ["10.96.5.10"], r.describe()
    assert {a.name for a in r.additional if a.rtype == "A"} == {fqdn("api")}


def test_clusterip_srv_second_named_port(server, tcp):
    r = expect_cluster(ask(server, f"_grpc._tcp.api.{NS_}", "SRV", tcp=tcp))
    srv = [a.rdata.split() for a in r.answer if a.rtype == "SRV"]
    assert [(int(s[2]), s[3]) for s in srv] == [(9090, fqdn("api"))], r.describe()


def test_srv_udp_protocol(server, tcp):
    r = expect_cluster(ask(server, f"_dns._udp.kube-dns.kube-system.svc.{ZONE}", "SRV", tcp=tcp))
    srv = [a.rdata.split() for a in r.answer if a.rtype == "SRV"]
    assert [(int(s[2]), s[3]) for s in srv] == [(53, f"kube-dns.kube-system.svc.{ZONE}.")], \
        r.describe()


def test_srv_wrong_protocol_is_nxdomain(server, tcp):
    # http is a TCP port: there is no _http._udp name.
    expect_negative(ask(server, f"_http._udp.api.{NS_}", "SRV", tcp=tcp), "NXDOMAIN")


def test_no_srv_for_unnamed_port(server, tcp):
    expect_negative(ask(server, f"_8443._tcp.api.{NS_}", "SRV", tcp=tcp), "NXDOMAIN")
    # Whatever SRV records the service name itself has (the spec defines none there), none of
    # them may be for the unnamed port.
    r = ask(server, "api", "SRV", tcp=tcp)
    assert r.status == "NOERROR", r.describe()
    assert all(a.rdata.split()[2] != "8443" for a in r.answer if a.rtype == "SRV"), r.describe()


def test_clusterip_ptr(server, tcp):
    r = expect_cluster(ask(server, "10.96.5.10", tcp=tcp, reverse=True))
    assert r.rdatas("PTR") == [fqdn("api")], r.describe()
    assert owners(r, "PTR") == {"10.5.96.10.in-addr.arpa."}


def test_clusterip_ptr_ipv6(server, tcp):
    r = expect_cluster(ask(server, "fd00:10:96::5:20", tcp=tcp, reverse=True))
    assert r.rdatas("PTR") == [fqdn("dual")], r.describe()
    # dig -x builds the nibble name; check it is what came back as the owner.
    assert len(next(iter(owners(r, "PTR"))).split(".")) == 32 + 3  # 32 nibbles, ip6, arpa, root


def test_clusterip_aaaa_on_ipv4_only_is_nodata(server, tcp):
    expect_negative(ask(server, "api", "AAAA", tcp=tcp), "NOERROR")


def test_existing_name_txt_is_nodata(server, tcp):
    expect_negative(ask(server, "web", "TXT", tcp=tcp), "NOERROR")


# ---- 2.4 headless ---------------------------------------------------------------------------

def test_headless_a_ready_deduplicated(server, tcp):
    r = expect_cluster(ask(server, "web", "A", tcp=tcp))
    # web-1 is in both slices (one record), web-3 is not ready (no record).
    assert r.rdatas("A") == ["10.250.1.10", "10.250.1.11", "10.250.1.12"], r.describe()
    assert owners(r, "A") == {fqdn("web")}


def test_headless_hostname_a(server, tcp):
    r = expect_cluster(ask(server, f"web-2.web.{NS_}", "A", tcp=tcp))
    assert r.rdatas("A") == ["10.250.1.12"], r.describe()


def test_headless_not_ready_hostname_is_nxdomain(server, tcp):
    expect_negative(ask(server, f"web-3.web.{NS_}", "A", tcp=tcp), "NXDOMAIN")


def test_headless_no_ready_endpoint_is_nxdomain(server, tcp):
    expect_negative(ask(server, "idle", "A", tcp=tcp), "NXDOMAIN")


def test_headless_publish_not_ready_addresses(server, tcp):
    r = expect_cluster(ask(server, "peers", "A", tcp=tcp))
    assert r.rdatas("A") == ["10.250.6.1", "10.250.6.2"], r.describe()
    r = expect_cluster(ask(server, f"peers-1.peers.{NS_}", "A", tcp=tcp))
    assert r.rdatas("A") == ["10.250.6.2"], r.describe()


def test_headless_dashed_ip_name(server, tcp):
    r = expect_cluster(ask(server, f"10-250-2-5.db.{NS_}", "A", tcp=tcp))
    assert r.rdatas("A") == ["10.250.2.5"], r.describe()


def test_headless_srv_per_ready_endpoint(server, tcp):
    r = expect_cluster(ask(server, f"_http._tcp.web.{NS_}", "SRV", tcp=tcp))
    srv = sorted((int(p), t) for _, _, p, t in (a.rdata.split() for a in r.answer if a.rtype == "SRV"))
    want = [(80, fqdn(f"web-{i}.web.{NS_}")) for i in range(3)]
    assert srv == want, r.describe()
    add = {a.name: a.rdata for a in r.additional if a.rtype == "A"}
    assert add == {fqdn(f"web-{i}.web.{NS_}"): f"10.250.1.1{i}" for i in range(3)}, r.describe()


def test_headless_srv_dashed_targets(server, tcp):
    r = expect_cluster(ask(server, f"_postgres._tcp.db.{NS_}", "SRV", tcp=tcp))
    srv = sorted((int(p), t) for _, _, p, t in (a.rdata.split() for a in r.answer if a.rtype == "SRV"))
    assert srv == [(5432, fqdn(f"10-250-2-5.db.{NS_}")), (5432, fqdn(f"10-250-2-6.db.{NS_}"))], \
        r.describe()
    add = {a.name: a.rdata for a in r.additional if a.rtype == "A"}
    assert add == {fqdn(f"10-250-2-5.db.{NS_}"): "10.250.2.5",
                   fqdn(f"10-250-2-6.db.{NS_}"): "10.250.2.6"}, r.describe()


def test_headless_endpoint_ptr_hostname(server, tcp):
    r = expect_cluster(ask(server, "10.250.1.11", tcp=tcp, reverse=True))
    assert r.rdatas("PTR") == [fqdn(f"web-1.web.{NS_}")], r.describe()


def test_headless_endpoint_ptr_dashed(server, tcp):
    r = expect_cluster(ask(server, "10.250.2.6", tcp=tcp, reverse=True))
    assert r.rdatas("PTR") == [fqdn(f"10-250-2-6.db.{NS_}")], r.describe()


def test_headless_dual_stack_a_and_aaaa(server, tcp):
    r = expect_cluster(ask(server, "pods6", "A", tcp=tcp))
    assert r.rdatas("A") == ["10.250.7.1"] and r.rdatas("AAAA") == [], r.describe()
    r = expect_cluster(ask(server, "pods6", "AAAA", tcp=tcp))
    assert r.rdatas("AAAA") == ["fd00:250::7:1"] and r.rdatas("A") == [], r.describe()


def test_headless_hostname_aaaa(server, tcp):
    r = expect_cluster(ask(server, f"p-0.pods6.{NS_}", "AAAA", tcp=tcp))
    assert r.rdatas("AAAA") == ["fd00:250::7:1"], r.describe()


def test_headless_endpoint_ptr_ipv6(server, tcp):
    r = expect_cluster(ask(server, "fd00:250::7:1", tcp=tcp, reverse=True))
    assert r.rdatas("PTR") == [fqdn(f"p-0.pods6.{NS_}")], r.describe()


def test_headless_absent_ready_condition_means_ready(server, tcp):
    r = expect_cluster(ask(server, "calm", "A", tcp=tcp))
    assert r.rdatas("A") == ["10.250.8.1"], r.describe()


def test_headless_ipv4_only_aaaa_is_nodata(server, tcp):
    expect_negative(ask(server, "web", "AAAA", tcp=tcp), "NOERROR")


def test_slice_without_service_serves_nothing(server, tcp):
    expect_negative(ask(server, "ghost", "A", tcp=tcp), "NXDOMAIN")
    expect_negative(ask(server, f"ghost-0.ghost.{NS_}", "A", tcp=tcp), "NXDOMAIN")


def test_loadbalancer_has_cluster_ip(server, tcp):
    r = expect_cluster(ask(server, "lb", "A", tcp=tcp))
    assert r.rdatas("A") == ["10.96.5.40"], r.describe()


# ---- 2.5 ExternalName -----------------------------------------------------------------------

def test_externalname_cname(server, tcp):
    r = expect_cluster(ask(server, "search", "A", tcp=tcp))
    assert r.answer, r.describe()
    first = r.answer[0]
    assert (first.name, first.rtype, first.rdata) == (fqdn("search"), "CNAME", "www.example.com."), \
        r.describe()
    # Forwarding comes later: nothing may be invented for www.example.com.
    assert all(a.name == fqdn("search") for a in r.answer), r.describe()


def test_externalname_cname_query(server, tcp):
    r = expect_cluster(ask(server, "search", "CNAME", tcp=tcp))
    assert r.rdatas("CNAME") == ["www.example.com."], r.describe()


# ---- 2.6 pod records ------------------------------------------------------------------------

def test_pod_a_record(server, tcp):
    r = expect_cluster(ask(server, f"10-1-2-3.{NS}.pod.{ZONE}", "A", tcp=tcp))
    assert r.rdatas("A") == ["10.1.2.3"], r.describe()
    assert owners(r, "A") == {f"10-1-2-3.{NS}.pod.{ZONE}."}


def test_pod_name_not_an_address_is_nxdomain(server, tcp):
    expect_negative(ask(server, f"10-1-2-300.{NS}.pod.{ZONE}", "A", tcp=tcp), "NXDOMAIN")


# ---- negative answers, names, case ----------------------------------------------------------

def test_nonexistent_service_nxdomain(server, tcp):
    expect_negative(ask(server, "nope", "A", tcp=tcp), "NXDOMAIN")


def test_nonexistent_below_service_nxdomain(server, tcp):
    expect_negative(ask(server, f"x.api.{NS_}", "A", tcp=tcp), "NXDOMAIN")


def test_namespace_is_empty_non_terminal(server, tcp):
    expect_negative(ask(server, f"{NS}.svc.{ZONE}", "A", tcp=tcp), "NOERROR")


def test_svc_label_is_empty_non_terminal(server, tcp):
    expect_negative(ask(server, f"svc.{ZONE}", "A", tcp=tcp), "NOERROR")


def test_unknown_namespace_nxdomain(server, tcp):
    expect_negative(ask(server, f"nons.svc.{ZONE}", "A", tcp=tcp), "NXDOMAIN")


def test_zone_apex_soa(server, tcp):
    r = expect_cluster(ask(server, ZONE, "SOA", tcp=tcp))
    assert len(r.rdatas("SOA")) == 1 and owners(r, "SOA") == {ZONE + "."}, r.describe()


def test_case_insensitive_and_case_echoed(server, tcp):
    asked = "WeB.ShOp.svc.CLUSTER.local."
    r = expect_cluster(ask(server, asked, "A", tcp=tcp))
    assert r.question == [(asked, "IN", "A")], "question must be echoed byte for byte:\n" + r.describe()
    assert r.rdatas("A") == ["10.250.1.10", "10.250.1.11", "10.250.1.12"], r.describe()
    assert owners(r, "A") == {asked}, "answer owner keeps the asker's case:\n" + r.describe()


def test_outside_zone_refused(server, tcp):
    r = ask(server, "example.com.", "A", tcp=tcp)
    assert r.status == "REFUSED", r.describe()
    assert r.answer == [], r.describe()


def test_zone_suffix_lookalike_refused(server, tcp):
    # "notcluster.local" ends with the zone's text but is not inside the zone.
    r = ask(server, "web.shop.svc.notcluster.local.", "A", tcp=tcp)
    assert r.status == "REFUSED", r.describe()

