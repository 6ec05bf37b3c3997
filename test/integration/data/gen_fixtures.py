"""Regenerates the kubectl-shaped fixtures in this directory (cluster.json, reload-v1.json,
reload-v2.json): /usr/bin/python3 test/integration/data/gen_fixtures.py test/integration/data
The JSON files are the source of truth for the tests; this only saves hand-editing 60 endpoints."""
import json, uuid, sys

NS = "shop"
def uid(s): return str(uuid.uuid5(uuid.NAMESPACE_DNS, s))
def meta(ns, name, extra=None):
    m = {"creationTimestamp": "2024-05-02T09:14:07Z", "name": name, "namespace": ns,
         "resourceVersion": str(1000 + len(name) * 7), "uid": uid(ns + "/" + name)}
    if extra: m.update(extra)
    return m

def svc(ns, name, *, cluster_ips, ports, families=("IPv4",), policy="SingleStack",
        publish_not_ready=False, external=None):
    spec = {}
    if external:
        spec = {"externalName": external, "sessionAffinity": "None", "type": "ExternalName"}
    else:
        spec = {"clusterIP": cluster_ips[0], "clusterIPs": list(cluster_ips),
                "internalTrafficPolicy": "Cluster", "ipFamilies": list(families),
                "ipFamilyPolicy": policy, "ports": ports,
                "selector": {"app": name}, "sessionAffinity": "None", "type": "ClusterIP"}
        if publish_not_ready: spec["publishNotReadyAddresses"] = True
    if external is None and ports is None: del spec["ports"]
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": meta(ns, name, {"labels": {"app": name}}),
            "spec": spec, "status": {"loadBalancer": {}}}

def port(name, p, proto="TCP", target=None):
    d = {}
    if name: d["name"] = name
    d.update({"port": p, "protocol": proto, "targetPort": target if target is not None else p})
    return d

def ep(ip, *, hostname=None, ready=True, pod=None, node="node-a", zone="zone-a", ns=NS):
    e = {"addresses": [ip] if isinstance(ip, str) else ip,
         "conditions": {"ready": ready, "serving": ready, "terminating": False}}
    if hostname: e["hostname"] = hostname
    e["nodeName"] = node
    if pod: e["targetRef"] = {"kind": "Pod", "name": pod, "namespace": ns, "uid": uid(ns + "/pod/" + pod)}
    e["zone"] = zone
    return e

def eps(ns, svcname, slice_name, endpoints, ports, addr_type="IPv4"):
    return {"addressType": addr_type, "apiVersion": "discovery.k8s.io/v1",
            "endpoints": endpoints, "kind": "EndpointSlice",
            "metadata": meta(ns, slice_name, {
                "generateName": svcname + "-",
                "labels": {"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                           "kubernetes.io/service-name": svcname},
                "ownerReferences": [{"apiVersion": "v1", "blockOwnerDeletion": True, "controller": True,
                                     "kind": "Service", "name": svcname, "uid": uid(ns + "/" + svcname)}]}),
            "ports": ports}

def slport(name, p, proto="TCP"):
    d = {}
    if name is not None: d["name"] = name
    d.update({"port": p, "protocol": proto})
    return d

def lst(items):
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}

def write(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=4, sort_keys=True)
        f.write("\n")

out = sys.argv[1]
items = []
# web: headless, 3 ready with hostnames, one not ready, split over two slices, web-1 duplicated.
items.append(svc(NS, "web", cluster_ips=["None"], ports=[port("http", 80)]))
items.append(eps(NS, "web", "web-7xk2p", [
    ep("10.250.1.10", hostname="web-0", pod="web-0"),
    ep("10.250.1.11", hostname="web-1", pod="web-1", node="node-b", zone="zone-b"),
    ep("10.250.1.13", hostname="web-3", pod="web-3", ready=False)], [slport("http", 80)]))
items.append(eps(NS, "web", "web-q9d4m", [
    ep("10.250.1.11", hostname="web-1", pod="web-1", node="node-b", zone="zone-b"),
    ep("10.250.1.12", hostname="web-2", pod="web-2")], [slport("http", 80)]))
# db: headless, endpoints without hostname (dashed names), named port postgres.
items.append(svc(NS, "db", cluster_ips=["None"], ports=[port("postgres", 5432)]))
items.append(eps(NS, "db", "db-h5v8r", [
    ep("10.250.2.5", pod="db-5f7c9-abcde"), ep("10.250.2.6", pod="db-5f7c9-fghij", node="node-b")],
    [slport("postgres", 5432)]))
# api: ClusterIP, two named ports and one unnamed.
items.append(svc(NS, "api", cluster_ips=["10.96.5.10"],
                 ports=[port("http", 80, target=8080), port("grpc", 9090), port(None, 8443)]))
items.append(eps(NS, "api", "api-2m4ns", [ep("10.250.4.7", pod="api-1"), ep("10.250.4.8", pod="api-2")],
                 [slport("http", 8080), slport("grpc", 9090), slport("", 8443)]))
# dual: dual-stack ClusterIP.
items.append(svc(NS, "dual", cluster_ips=["10.96.5.20", "fd00:10:96::5:20"], ports=[port("http", 80)],
                 families=("IPv4", "IPv6"), policy="RequireDualStack"))
# search: ExternalName.
items.append(svc(NS, "search", cluster_ips=None, ports=None, external="www.example.com"))
# idle: headless whose only endpoint is not ready -> NXDOMAIN.
items.append(svc(NS, "idle", cluster_ips=["None"], ports=[port("http", 80)]))
items.append(eps(NS, "idle", "idle-8sd7f", [ep("10.250.5.1", hostname="idle-0", pod="idle-0", ready=False)],
                 [slport("http", 80)]))
# peers: headless with publishNotReadyAddresses: not-ready endpoints are published too.
items.append(svc(NS, "peers", cluster_ips=["None"], ports=[port("gossip", 7946)], publish_not_ready=True))
items.append(eps(NS, "peers", "peers-t6w3z", [
    ep("10.250.6.1", hostname="peers-0", pod="peers-0"),
    ep("10.250.6.2", hostname="peers-1", pod="peers-1", ready=False)], [slport("gossip", 7946)]))
# big: headless with 60 ready endpoints (no hostnames) for truncation tests.
items.append(svc(NS, "big", cluster_ips=["None"], ports=[port("http", 80)]))
items.append(eps(NS, "big", "big-k3j9x", [ep(f"10.250.3.{i}", pod=f"big-{i}") for i in range(1, 61)],
                 [slport("http", 80)]))
# kube-dns in another namespace: UDP and TCP named ports.
items.append(svc("kube-system", "kube-dns", cluster_ips=["10.96.0.10"],
                 ports=[port("dns", 53, "UDP"), port("dns-tcp", 53, "TCP"), port("metrics", 9153)]))
# pods6: headless dual-stack, one IPv4 and one IPv6 slice for the same pod.
items.append(svc(NS, "pods6", cluster_ips=["None"], ports=[port("http", 80)], families=("IPv4", "IPv6"),
                 policy="PreferDualStack"))
items.append(eps(NS, "pods6", "pods6-v4x7q", [ep("10.250.7.1", hostname="p-0", pod="p-0")],
                 [slport("http", 80)]))
items.append(eps(NS, "pods6", "pods6-v6n2k", [ep("fd00:250::7:1", hostname="p-0", pod="p-0")],
                 [slport("http", 80)], addr_type="IPv6"))
# calm: an endpoint without conditions (absent ready means ready) and one not ready.
items.append(svc(NS, "calm", cluster_ips=["None"], ports=[port("http", 80)]))
calm = eps(NS, "calm", "calm-5pz8d", [ep("10.250.8.1", pod="calm-0"), ep("10.250.8.2", pod="calm-1", ready=False)],
           [slport("http", 80)])
calm["endpoints"][0]["conditions"] = {}
items.append(calm)
# ghost: an EndpointSlice whose Service does not exist (deleted first): serves nothing.
items.append(eps(NS, "ghost", "ghost-w2r4t", [ep("10.250.9.1", hostname="ghost-0", pod="ghost-0")],
                 [slport("http", 80)]))
# lb: a LoadBalancer service has a ClusterIP like any other.
lb = svc(NS, "lb", cluster_ips=["10.96.5.40"], ports=[port("https", 443)])
lb["spec"]["type"] = "LoadBalancer"
lb["spec"]["externalTrafficPolicy"] = "Cluster"
lb["spec"]["ports"][0]["nodePort"] = 31443
lb["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.40"}]}}
items.append(lb)
write(out + "/cluster.json", lst(items))

# Reload fixtures: v1 has one service, v2 moves its endpoint and adds a second service.
v1 = [svc(NS, "rl", cluster_ips=["None"], ports=[port("http", 80)]),
      eps(NS, "rl", "rl-a1b2c", [ep("10.251.0.1", hostname="rl-0", pod="rl-0")], [slport("http", 80)])]
v2 = [svc(NS, "rl", cluster_ips=["None"], ports=[port("http", 80)]),
      eps(NS, "rl", "rl-a1b2c", [ep("10.251.0.2", hostname="rl-0", pod="rl-0")], [slport("http", 80)]),
      svc(NS, "extra", cluster_ips=["10.96.9.9"], ports=[port("http", 80)])]
write(out + "/reload-v1.json", lst(v1))
write(out + "/reload-v2.json", lst(v2))
