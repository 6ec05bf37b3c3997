// uvx::CurlMulti on a private libuv loop: a transfer to a closed loopback port completes with a
// connection error through onDone, and every handle is gone afterwards (uv_loop_close == 0).
#include "hdnsd/uvx/curl_multi.h"

#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

// A loopback port nobody listens on: bind one, read its number, close it.
int closedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace

TEST_CASE("CurlMulti: a refused connection ends in onDone, and closing leaves the loop empty") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    hdnsd::uvx::CurlMulti multi(&loop);
    REQUIRE(multi.init().has_value());
    hdnsd::uvx::CurlTransfer t;
    hdnsd::uvx::CurlTransfer::Options o;
    o.url = "http://127.0.0.1:" + std::to_string(closedPort()) + "/api/v1/services";
    o.connectTimeout_ms = 2000;
    o.timeout_ms = 3000;
    REQUIRE(t.prepare(o).has_value());
    CURLcode got = CURLE_OK;
    int calls = 0;
    t.onDone = [&](CURLcode c, const char*) {
      got = c;
      ++calls;
    };
    REQUIRE(multi.add(t).has_value());
    CHECK(multi.active() == 1);
    for (int i = 0; i < 400 && calls == 0; ++i) uv_run(&loop, UV_RUN_ONCE);
    CHECK(calls == 1);
    CHECK(got == CURLE_COULDNT_CONNECT);
    CHECK(multi.active() == 0);

    // A second transfer destroyed while in flight is removed from the multi, never called.
    hdnsd::uvx::CurlTransfer* t2 = new hdnsd::uvx::CurlTransfer();
    REQUIRE(t2->prepare(o).has_value());
    t2->onDone = [&](CURLcode, const char*) { ++calls; };
    REQUIRE(multi.add(*t2).has_value());
    delete t2;
    CHECK(multi.active() == 0);
    multi.close();
  }
  uv_run(&loop, UV_RUN_DEFAULT);  // close callbacks
  CHECK(uv_loop_close(&loop) == 0);
}
