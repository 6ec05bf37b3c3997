// DNS over UDP on one address. Owns one uv_udp_t (recvmmsg batches) and two buffers that live
// as long as the listener: the receive batch and the answer buffer. A query is answered inside
// its receive callback: parse → respond → uv_udp_try_send, with no allocation. Only when the
// socket's send buffer is full is the answer copied into a heap send request (bounded count).
// Loop thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "hdnsd/query/responder.h"
#include "hdnsd/upstream/forwarder.h"
#include "hdnsd/util/result.h"
#include "hdnsd/util/sock_addr.h"
#include "hdnsd/uvx/uv_ptr.h"

namespace hdnsd::server {

// A ReplySink too: answers that came back from upstream are sent from here to the client's
// address; close() cancels the waiters still pending for this listener.
class UdpListener final : public upstream::ReplySink {
 public:
  UdpListener(uv_loop_t* loop, query::Responder& responder, query::QueryStats& stats);
  ~UdpListener();
  UdpListener(const UdpListener&) = delete;
  UdpListener& operator=(const UdpListener&) = delete;

  // Binds with SO_REUSEPORT, so a new hdnsd started beside this one shares the port (restarts
  // without a gap, see ops/README in the top README: "Restarts").
  Result<void, std::string> bind(const SockAddr& addr);
  // Serves an already-bound UDP socket (systemd socket activation); takes ownership of fd.
  Result<void, std::string> open(int fd);
  void close() noexcept;  // stops receiving; queued sends still complete
  // Shutdown's first step: read no more queries, but keep the socket so that answers still
  // coming back from upstream reach the clients that asked (close() comes after).
  void stopReading() noexcept;
  // Lame duck's last step: no new queries reach this socket (it is connect()ed to a port
  // nobody sends from, and a connected UDP socket leaves its SO_REUSEPORT group's hash
  // selection), while those already queued are still read and answered. Then close().
  // Returns false when that is not possible (a wildcard address: connecting would rebind it).
  bool stopReceivingNew() noexcept;
  size_t queuedBytes() const noexcept;  // FIONREAD: what is still waiting to be read
  uint16_t port() const noexcept;
  void deliverAnswer(const sockaddr* to, std::span<const uint8_t> answer) noexcept override;

  static constexpr size_t kBatch = 32;           // datagrams per recvmmsg(2)
  static constexpr size_t kChunk = 64 * 1024;    // libuv splits the buffer in 64 KiB slots
  static constexpr size_t kMaxQueuedSends = 4096;

 private:
  static void onAllocCb(uv_handle_t* h, size_t suggested, uv_buf_t* buf) noexcept;
  static void onRecvCb(uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr* from,
                       unsigned flags) noexcept;
  void onRecv(ssize_t nread, const uv_buf_t* buf, const sockaddr* from, unsigned flags) noexcept;
  void send(const sockaddr* to, const uint8_t* bytes, size_t len) noexcept;

  uv_loop_t* loop_;
  query::Responder& responder_;
  query::QueryStats& stats_;
  std::unique_ptr<uint8_t[]> recvBatch_;
  std::unique_ptr<uint8_t[]> answer_;
  std::shared_ptr<size_t> queuedSends_ = std::make_shared<size_t>(0);
  uvx::UvPtr<uv_udp_t> udp_;
};

}  // namespace hdnsd::server
