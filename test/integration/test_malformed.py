"""Malformed and unusual packets, sent raw over UDP and TCP. Each is either answered with
FORMERR/NOTIMP (ID echoed, QR set) or dropped, and afterwards the daemon still answers dig.

Packets are written by hand from RFC 1035 4.1 (header: ID, flags, QD/AN/NS/AR counts; question:
QNAME, QTYPE, QCLASS), annotated per field; dig and our own writer are not involved.
"""

import random
import socket
import struct

import pytest

from harness import dig, fqdn, header, parse_header, qname_wire, tcp_exchange, udp_exchange

FORMERR, NOTIMP, REFUSED = 1, 4, 5
RD = 0x0100
A, IN = b"\x00\x01", b"\x00\x01"  # QTYPE A, QCLASS IN
ANY_ERROR = (FORMERR, NOTIMP)


@pytest.fixture(scope="module")
def mserver(module_hdnsd):
    """A daemon of its own: if a packet kills it, only this module's tests see it."""
    return module_hdnsd.start(name="malformed")


def still_serving(d):
    assert d.alive(), f"hdnsd died (exit {d.proc.returncode}):\n{d.log()}"
    r = dig(d.port, fqdn("api"), "A")
    assert r.status == "NOERROR" and r.rdatas("A") == ["10.96.5.10"], \
        "the daemon no longer answers a normal query:\n" + r.describe()


def check_udp(d, pkt, allowed, must_answer=False, must_drop=False):
    resp = udp_exchange(d.port, pkt)
    if resp is None:
        assert not must_answer, f"no reply to {pkt[:24].hex()}… (expected rcode in {allowed})"
    else:
        assert not must_drop, f"a reply to a packet that must be dropped: {resp.hex()}"
        assert len(resp) >= 12, f"reply shorter than a header: {resp.hex()}"
        qid, qr, _, _, _, rcode = parse_header(resp)
        assert qid == struct.unpack("!H", pkt[:2])[0], f"ID not echoed: {resp[:12].hex()}"
        assert qr == 1, f"reply without QR: {resp[:12].hex()}"
        assert rcode in allowed, f"rcode {rcode}, expected one of {allowed}: {resp.hex()}"
    still_serving(d)


def check_tcp(d, pkt, allowed, must_answer=False, must_drop=False):
    how, resp = tcp_exchange(d.port, pkt)
    if how != "reply":
        assert not must_answer, f"no reply over TCP ({how}) to {pkt[:24].hex()}…"
    else:
        assert not must_drop, f"a reply to a packet that must be dropped: {resp.hex()}"
        assert len(resp) >= 12, f"reply shorter than a header: {resp.hex()}"
        qid, qr, _, _, _, rcode = parse_header(resp)
        assert qid == struct.unpack("!H", pkt[:2])[0], f"ID not echoed: {resp[:12].hex()}"
        assert qr == 1 and rcode in allowed, f"rcode {rcode}, expected {allowed}: {resp.hex()}"
    still_serving(d)


@pytest.fixture(params=["udp", "tcp"])
def send(request, mserver):
    check = check_udp if request.param == "udp" else check_tcp
    return lambda pkt, allowed=ANY_ERROR, **kw: check(mserver, pkt, allowed, **kw)


def question(name="api.shop.svc.cluster.local"):
    return qname_wire(name) + A + IN


# ---- the cases --------------------------------------------------------------------------------

def test_random_bytes(send):
    rng = random.Random(20240502)  # seeded: the same packets every run
    for _ in range(10):
        pkt = bytes(rng.getrandbits(8) for _ in range(rng.randint(12, 120)))
        qr = pkt[2] >> 7
        # A random packet with QR=1 looks like a response: it must never be answered.
        send(pkt, must_drop=bool(qr))


def test_short_header(send):
    pkt = bytes([0xAB, 0xCD,   # ID
                 0x01, 0x00,   # flags: RD
                 0x00])        # first byte of QDCOUNT, then nothing: 5 bytes
    send(pkt, (FORMERR,))


def test_header_only(send):
    pkt = header(0xABCE, RD, qd=1)  # QDCOUNT 1 but the question is missing
    send(pkt, (FORMERR,))


def test_pointer_to_itself(send):
    pkt = header(0x1111, RD, qd=1) + bytes([
        0xC0, 0x0C,                # QNAME: a compression pointer to offset 12, i.e. to itself
    ]) + A + IN
    send(pkt, (FORMERR,))


def test_pointer_loop_through_label(send):
    pkt = header(0x1112, RD, qd=1) + bytes([
        0x01, ord("a"),            # label "a" at offset 12
        0xC0, 0x0C,                # pointer back to offset 12: a.a.a.a… forever
    ]) + A + IN
    send(pkt, (FORMERR,))


def test_forward_pointer_in_question(send):
    pkt = header(0x1113, RD, qd=1) + bytes([
        0xC0, 0x20,                # pointer to offset 32, past the end of the packet
    ]) + A + IN
    send(pkt, (FORMERR,))


def test_qdcount_zero(send):
    pkt = header(0x2222, RD, qd=0)  # no question at all (and no COOKIE, RFC 7873 5.4)
    send(pkt, (FORMERR, NOTIMP))


def test_qdcount_two(send):
    pkt = header(0x2223, RD, qd=2) + question() + question("web.shop.svc.cluster.local")
    send(pkt, (FORMERR, NOTIMP))


def test_qdcount_larger_than_packet(send):
    pkt = header(0x2224, RD, qd=1, an=3) + question()  # ANCOUNT 3, no records follow
    send(pkt, (FORMERR,))


@pytest.mark.parametrize("opcode", [2, 3, 15], ids=["status", "unassigned3", "unassigned15"])
def test_unknown_opcode_notimp(send, opcode):
    pkt = header(0x3300 + opcode, (opcode << 11) | RD, qd=1) + question()
    # RFC 1035 4.1.1: NOTIMP for a kind of query the server does not support. Must be answered.
    send(pkt, (NOTIMP,), must_answer=True)


def test_qr_set_is_dropped(send):
    pkt = header(0x4444, 0x8000 | RD, qd=1) + question()  # QR=1: a response, not a query
    send(pkt, (), must_drop=True)


def test_label_longer_than_63(send):
    pkt = header(0x5555, RD, qd=1) + bytes([64]) + b"a" * 64 + b"\x00" + A + IN  # 0x40: bad type
    send(pkt, (FORMERR,))


def test_name_longer_than_255(send):
    # 4 labels of 63 plus the root: 4 * 64 + 1 = 257 octets (RFC 1035 2.3.4: at most 255).
    name = b"".join(bytes([63]) + bytes([ord("a") + i]) * 63 for i in range(4)) + b"\x00"
    assert len(name) == 257
    pkt = header(0x6666, RD, qd=1) + name + A + IN
    send(pkt, (FORMERR,))


def test_name_of_exactly_255_is_valid(send):
    # 63+63+63+61 octets of labels + 4 length bytes + root = 255: the longest legal name. It is
    # outside the cluster zone, so the answer is a normal REFUSED, not FORMERR.
    labels = [b"a" * 63, b"b" * 63, b"c" * 63, b"d" * 61]
    name = b"".join(bytes([len(l)]) + l for l in labels) + b"\x00"
    assert len(name) == 255
    pkt = header(0x6667, RD, qd=1) + name + A + IN
    send(pkt, (REFUSED,), must_answer=True)


def test_question_without_type_and_class(send):
    pkt = header(0x7777, RD, qd=1) + qname_wire("api.shop.svc.cluster.local") + b"\x00"  # 1 byte
    send(pkt, (FORMERR,))


def test_empty_datagram_dropped(mserver):
    assert udp_exchange(mserver.port, b"") is None
    still_serving(mserver)


def test_tcp_zero_length_message(mserver):
    with socket.create_connection(("127.0.0.1", mserver.port), timeout=1) as s:
        s.sendall(b"\x00\x00")  # a length prefix of 0: nothing to answer
        s.settimeout(0.3)
        try:
            data = s.recv(2)
        except (socket.timeout, ConnectionResetError):
            data = b""
        assert data == b"", f"unexpected reply to an empty TCP message: {data!r}"
    still_serving(mserver)
