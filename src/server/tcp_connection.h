// One DNS-over-TCP client connection (private to src/server). See tcp_listener.h.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>

#include "hdnsd/upstream/forwarder.h"

namespace hdnsd::server {

class TcpListener;

// A ReplySink: upstream answers arrive later, possibly out of order (RFC 7766 7 allows it).
class TcpConnection final : public upstream::ReplySink {
 public:
  static constexpr size_t kInitialBuffer = 4096;
  static constexpr size_t kMaxFrame = 2 + 65535;

  // Accepts one pending connection from `server`; on failure nothing remains.
  static void accept(TcpListener& owner, uv_stream_t* server) noexcept;

  void closeGracefully() noexcept;  // stop reading; close once unsent answers are flushed
  void close() noexcept;            // close now (unsent answers are dropped)
  void deliverAnswer(const sockaddr* to, std::span<const uint8_t> answer) noexcept override;

  const sockaddr_storage& peer() const noexcept { return peer_; }

  TcpConnection* prev = nullptr;
  TcpConnection* next = nullptr;

 private:
  explicit TcpConnection(TcpListener& owner) noexcept : owner_(&owner) {}
  static void onAllocCb(uv_handle_t* h, size_t suggested, uv_buf_t* buf) noexcept;
  static void onReadCb(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept;
  static void onIdleCb(uv_timer_t* t) noexcept;
  static void onClosedCb(uv_handle_t* h) noexcept;
  void onRead(ssize_t nread) noexcept;
  void processFrames() noexcept;
  bool answer(const uint8_t* msg, size_t len) noexcept;
  void write(const uint8_t* bytes, size_t len) noexcept;
  void onWritten(size_t len) noexcept;
  void updateReading() noexcept;

  TcpListener* owner_;
  uv_tcp_t tcp_{};
  uv_timer_t idle_{};
  int openHandles_ = 0;
  bool closing_ = false;
  bool draining_ = false;  // graceful close requested
  bool reading_ = false;
  bool pausedInFlight_ = false;  // stopped at --tcp-max-in-flight: an upstream answer resumes us
  bool resume_ = false;          // the idle timer is armed at 0 ms to resume (not an idle timeout)
  std::unique_ptr<uint8_t[]> in_;
  size_t inCap_ = 0, inLen_ = 0;
  size_t pendingWrite_ = 0;  // bytes handed to uv_write and not yet confirmed
  sockaddr_storage peer_{};  // the client's address (the consistent spreading policy hashes it)
};

}  // namespace hdnsd::server
