// The floor: the least a DNS server can cost per query on this kernel. One thread, one UDP socket,
// a blocking recvmmsg of up to kBatch datagrams, the QR bit set in each (a query becomes its own
// "answer": same ID, same question, no records), and one sendmmsg back to the senders. No parsing,
// no lookup, no event loop. bench/run measures it beside the real servers, so every server's CPU
// time per query can be read as "floor + what the server itself adds".
//
//   reflector ADDR PORT [--sendto]   (IPv4; runs until SIGTERM or SIGINT, then prints its count)
//
// --sendto answers each datagram with its own sendto(2) instead of one sendmmsg(2) per batch: what
// a server pays when it batches receives but not sends (libuv's uv_udp_try_send, as hdnsd does).
//
// Not part of hdnsd: built by bench/run with `g++ -O2`, used only inside the benchmark's network
// namespace.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

constexpr unsigned kBatch = 64;        // datagrams per syscall (dnsperf keeps ~100 in flight)
constexpr size_t kMaxDatagram = 4096;  // dnsperf's queries are < 300 bytes
constexpr uint8_t kQrBit = 0x80;       // byte 2 of the header: QR|Opcode|AA|TC|RD

volatile sig_atomic_t g_stop = 0;
void onSignal(int) { g_stop = 1; }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 && !(argc == 4 && std::strcmp(argv[3], "--sendto") == 0)) {
    std::fprintf(stderr, "usage: reflector ADDR PORT [--sendto]\n");
    return 2;
  }
  const bool perPacketSend = argc == 4;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[2])));
  if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
    std::fprintf(stderr, "reflector: bad IPv4 address %s\n", argv[1]);
    return 2;
  }
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::fprintf(stderr, "reflector: cannot bind %s:%s: %s\n", argv[1], argv[2], std::strerror(errno));
    return 1;
  }
  // No SA_RESTART: SIGTERM interrupts the blocking recvmmsg with EINTR and the loop ends.
  struct sigaction sa{};
  sa.sa_handler = onSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  static std::array<std::array<uint8_t, kMaxDatagram>, kBatch> bufs;
  std::array<sockaddr_in, kBatch> peers{};
  std::array<iovec, kBatch> iovs{};
  std::array<mmsghdr, kBatch> msgs{};
  uint64_t packets = 0;

  while (!g_stop) {
    for (unsigned i = 0; i < kBatch; ++i) {
      iovs[i] = {bufs[i].data(), bufs[i].size()};
      msgs[i].msg_hdr = {};
      msgs[i].msg_hdr.msg_name = &peers[i];
      msgs[i].msg_hdr.msg_namelen = sizeof peers[i];
      msgs[i].msg_hdr.msg_iov = &iovs[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    // MSG_WAITFORONE: block for the first datagram, then take whatever else is already queued.
    const int n = recvmmsg(fd, msgs.data(), kBatch, MSG_WAITFORONE, nullptr);
    if (n <= 0) continue;  // EINTR (stop) or a transient error
    unsigned out = 0;
    for (int i = 0; i < n; ++i) {
      const unsigned len = msgs[i].msg_len;
      if (len < 12 || (bufs[i][2] & kQrBit)) continue;  // not a query: drop, as a server would
      bufs[i][2] |= kQrBit;
      iovs[i].iov_len = len;
      if (out != static_cast<unsigned>(i)) {
        msgs[out] = msgs[i];  // msg_hdr still points at peers[i] and iovs[i]
      }
      ++out;
    }
    unsigned sent = 0;
    if (perPacketSend) {
      for (unsigned i = 0; i < out; ++i) {
        const msghdr& h = msgs[i].msg_hdr;
        if (sendto(fd, h.msg_iov->iov_base, h.msg_iov->iov_len, 0,
                   static_cast<const sockaddr*>(h.msg_name), h.msg_namelen) >= 0) {
          ++sent;
        }
      }
      out = 0;  // skip the batched send below
    }
    while (sent < out) {
      const int s = sendmmsg(fd, msgs.data() + sent, out - sent, 0);
      if (s <= 0) break;  // buffer full: the rest are lost, counted by the client
      sent += static_cast<unsigned>(s);
    }
    packets += sent;
  }
  std::printf("reflector: %llu answers\n", static_cast<unsigned long long>(packets));
  close(fd);
  return 0;
}
