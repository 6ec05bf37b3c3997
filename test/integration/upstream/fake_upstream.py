"""A tiny misbehaving upstream on loopback (UDP and TCP), for what a real server will not do:
delay answers, answer with the wrong ID or question, answer twice, set TC, stay silent.
Runs in a background thread; every query received is counted (and remembered per name).

Modes (the first label of the query name picks the behaviour, so one server covers all cases):
  slow-*      answer after `delay` seconds (in its own timer, so other queries are not held up)
  wrongid-*   the answer's ID is off by one (then nothing else)
  wrongq-*    the answer echoes another question name
  dup-*       the right answer, sent twice
  tc-*        UDP: header + question with TC=1; TCP: the full answer
  silent-*    no answer at all
  servfail-*  SERVFAIL
  anything    A 192.0.2.53, TTL 60
"""

import socket
import struct
import threading


def _parse_question(msg):
    pos = 12
    labels = []
    while msg[pos] != 0:
        n = msg[pos]
        labels.append(msg[pos + 1:pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    pos += 1
    qtype, qclass = struct.unpack("!HH", msg[pos:pos + 4])
    return labels, msg[12:pos + 4], qtype


class FakeUpstream:
    def __init__(self, port, delay=1.0):
        self.port = port
        self.delay = delay
        self.count = 0
        self.names = {}
        self.lock = threading.Lock()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", port))
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", port))
        self.tcp.listen(16)
        self.stopping = False
        self.threads = [threading.Thread(target=self._udp_loop, daemon=True),
                        threading.Thread(target=self._tcp_loop, daemon=True)]
        for t in self.threads:
            t.start()

    def queries_for(self, first_label):
        with self.lock:
            return self.names.get(first_label, 0)

    def _answer(self, query, tcp, name_override=None, id_delta=0, rcode=0, tc=False):
        qid, flags = struct.unpack("!HH", query[:4])
        labels, question, qtype = _parse_question(query)
        if name_override:
            question = b"".join(bytes([len(x)]) + x.encode() for x in name_override.split(".")) + b"\x00" + question[-4:]
        rflags = 0x8000 | (flags & 0x0100) | 0x0080 | rcode | (0x0200 if tc else 0)
        an = 0 if (rcode or tc or qtype != 1) else 1
        msg = struct.pack("!HHHHHH", (qid + id_delta) & 0xFFFF, rflags, 1, an, 0, 0) + question
        if an:
            msg += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 53])
        return msg

    def _respond(self, query, tcp):
        labels, _, _ = _parse_question(query)
        first = labels[0] if labels else ""
        with self.lock:
            self.count += 1
            self.names[first] = self.names.get(first, 0) + 1
        kind = first.split("-")[0]
        if kind == "silent":
            return []
        if kind == "wrongid":
            return [self._answer(query, tcp, id_delta=1)]
        if kind == "wrongq":
            return [self._answer(query, tcp, name_override="other.example")]
        if kind == "dup":
            a = self._answer(query, tcp)
            return [a, a]
        if kind == "tc" and not tcp:
            return [self._answer(query, tcp, tc=True)]
        if kind == "servfail":
            return [self._answer(query, tcp, rcode=2)]
        return [self._answer(query, tcp)]

    def _udp_loop(self):
        while not self.stopping:
            try:
                data, addr = self.udp.recvfrom(4096)
            except OSError:
                return
            try:
                answers = self._respond(data, False)
            except Exception:  # a malformed query: ignore
                continue
            labels, _, _ = _parse_question(data)
            delay = self.delay if labels and labels[0].startswith("slow") else 0
            for a in answers:
                if delay:
                    threading.Timer(delay, self._send_udp, (a, addr)).start()
                else:
                    self._send_udp(a, addr)

    def _send_udp(self, msg, addr):
        try:
            self.udp.sendto(msg, addr)
        except OSError:
            pass

    def _tcp_loop(self):
        while not self.stopping:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            threading.Thread(target=self._tcp_conn, args=(conn,), daemon=True).start()

    def _tcp_conn(self, conn):
        with conn:
            while True:
                hdr = conn.recv(2)
                if len(hdr) < 2:
                    return
                n = struct.unpack("!H", hdr)[0]
                data = b""
                while len(data) < n:
                    chunk = conn.recv(n - len(data))
                    if not chunk:
                        return
                    data += chunk
                for a in self._respond(data, True):
                    conn.sendall(struct.pack("!H", len(a)) + a)

    def close(self):
        self.stopping = True
        for s in (self.udp, self.tcp):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
