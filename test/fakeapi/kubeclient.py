"""A minimal raw HTTPS client for the fake's tests: one keep-alive connection, reads chunked
watch streams event by event (http.client does the de-chunking, so lines cut across chunks are
joined exactly as a real client must)."""

import http.client
import json
import ssl
import time


class KubeClient:
    def __init__(self, api, token=None, timeout=5.0):
        self.api = api
        ctx = ssl.create_default_context(cafile=str(api.ca_file))
        self.conn = http.client.HTTPSConnection("127.0.0.1", api.port, context=ctx, timeout=timeout)
        self.token = token

    def _headers(self):
        tok = self.token if self.token is not None else self.api.token()
        return {"Authorization": f"Bearer {tok}"} if tok else {}

    def get(self, path):
        """→ (status, parsed JSON body, headers)."""
        self.conn.request("GET", path, headers=self._headers())
        r = self.conn.getresponse()
        body = r.read()
        return r.status, json.loads(body) if body else None, dict(r.getheaders())

    def watch(self, path):
        """Starts a watch; → WatchStream (status, headers, next_event())."""
        c = http.client.HTTPSConnection("127.0.0.1", self.api.port,
                                        context=ssl.create_default_context(cafile=str(self.api.ca_file)),
                                        timeout=5)
        c.request("GET", path, headers=self._headers())
        return WatchStream(c, c.getresponse())

    def close(self):
        self.conn.close()


class WatchStream:
    def __init__(self, conn, resp):
        self.conn, self.resp = conn, resp
        self.status = resp.status
        self.headers = dict(resp.getheaders())
        self.buf = b""

    def readline(self, timeout=5.0):
        """One line (bytes, without the newline); b"" at the end of the stream."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            if time.monotonic() > deadline:
                raise TimeoutError("no full line within %.1fs (have %r)" % (timeout, self.buf[:200]))
            self.conn.sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.resp.read1(65536)
            if not chunk:
                line, self.buf = self.buf, b""
                return line
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def next_event(self, timeout=5.0, skip_bookmarks=False):
        while True:
            line = self.readline(timeout)
            if not line:
                return None
            ev = json.loads(line)
            if skip_bookmarks and ev["type"] == "BOOKMARK":
                continue
            return ev

    def close(self):
        self.conn.close()
