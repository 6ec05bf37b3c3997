"""Builders for the Kubernetes objects the fake API server serves (shapes as the apiserver returns
them: Service v1, Endpoints v1, Pod v1, EndpointSlice discovery.k8s.io/v1), and a generator of big clusters
for the benchmarks."""

HEADLESS_LABEL = "service.kubernetes.io/headless"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def service(ns, name, cluster_ip="None", ports=(("http", 80, "TCP"),), labels=None,
            external_name=None, publish_not_ready=False, cluster_ips=None):
    """cluster_ip "None" makes a headless service; external_name an ExternalName one."""
    spec = {"ports": [{"name": n, "port": p, "protocol": proto, "targetPort": p}
                      for n, p, proto in ports]}
    if external_name:
        spec.update(type="ExternalName", externalName=external_name)
    else:
        spec.update(type="ClusterIP", clusterIP=cluster_ip,
                    clusterIPs=cluster_ips or [cluster_ip], selector={"app": name},
                    ipFamilies=["IPv4"], ipFamilyPolicy="SingleStack", sessionAffinity="None")
    if publish_not_ready:
        spec["publishNotReadyAddresses"] = True
    return {"kind": "Service", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": ns, "labels": dict(labels or {"app": name})},
            "spec": spec, "status": {"loadBalancer": {}}}


def endpoint_slice(ns, svc, addresses, name=None, ports=(("http", 8080, "TCP"),), headless=True,
                   labels=None, address_type="IPv4"):
    """addresses: list of IPs, or of (ip, ready) / (ip, ready, hostname) tuples."""
    eps = []
    for a in addresses:
        ip, ready, host = (a, True, None) if isinstance(a, str) else (tuple(a) + (None,))[:3]
        ep = {"addresses": [ip], "conditions": {"ready": ready, "serving": ready, "terminating": False},
              "targetRef": {"kind": "Pod", "namespace": ns, "name": f"{svc}-{ip.replace('.', '-').replace(':', '-')}"}}
        if host:
            ep["hostname"] = host
        eps.append(ep)
    lab = {SERVICE_NAME_LABEL: svc, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    if headless:
        lab[HEADLESS_LABEL] = ""
    lab.update(labels or {})
    return {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
            "metadata": {"name": name or f"{svc}-abcde", "namespace": ns, "labels": lab,
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": svc,
                                              "uid": "00000000-0000-0000-0000-000000000000",
                                              "controller": True, "blockOwnerDeletion": True}]},
            "addressType": address_type, "endpoints": eps,
            "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports]}


def endpoints(ns, svc, addresses, ports=(("http", 8080, "TCP"),), headless=True, labels=None):
    """v1 Endpoints: ready addresses in `addresses`, not-ready ones in `notReadyAddresses`."""
    ready, not_ready = [], []
    for a in addresses:
        ip, ok, host = (a, True, None) if isinstance(a, str) else (tuple(a) + (None,))[:3]
        e = {"ip": ip, "targetRef": {"kind": "Pod", "namespace": ns, "name": f"{svc}-{ip.replace('.', '-')}"}}
        if host:
            e["hostname"] = host
        (ready if ok else not_ready).append(e)
    subset = {"addresses": ready, "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports]}
    if not_ready:
        subset["notReadyAddresses"] = not_ready
    lab = dict(labels or {})
    if headless:
        lab[HEADLESS_LABEL] = ""
    return {"kind": "Endpoints", "apiVersion": "v1",
            "metadata": {"name": svc, "namespace": ns, "labels": lab},
            "subsets": [subset] if ready or not_ready else []}


def pod(ns, name, node, ips=(), host_network=False, phase="Running"):
    """A v1 Pod as the apiserver returns it, trimmed to what hdnsd --autopath reads: spec.nodeName,
    spec.hostNetwork, status.phase, status.podIP and status.podIPs (first IP in both)."""
    spec = {"nodeName": node, "containers": [{"name": "main", "image": "registry.k8s.io/pause:3.9"}],
            "dnsPolicy": "ClusterFirst"}
    if host_network:
        spec["hostNetwork"] = True
    st = {"phase": phase}
    if ips:
        st["podIP"] = ips[0]
        st["podIPs"] = [{"ip": i} for i in ips]
    return {"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
            "spec": spec, "status": st}


def big_cluster(n_services=10000, endpoints_per_service=10, namespaces=50):
    """n_services headless services with endpoints_per_service ready endpoints each, spread over
    `namespaces` namespaces; IPs 10.(64+i/65536).x.y unique. Yields objects."""
    ip = 0
    for i in range(n_services):
        ns = f"ns{i % namespaces}"
        name = f"svc{i}"
        yield service(ns, name)
        addrs = []
        for _ in range(endpoints_per_service):
            addrs.append(f"10.{64 + ip // 65536}.{(ip // 256) % 256}.{ip % 256}")
            ip += 1
        yield endpoint_slice(ns, name, addrs, name=f"{name}-x1")
