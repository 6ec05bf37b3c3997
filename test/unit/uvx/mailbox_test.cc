// uvx::Mailbox: values posted from another thread reach the loop's thread, the newest wins over
// unread older ones, and nothing is delivered (or leaked) once the mailbox is closed.
#include "hdnsd/uvx/mailbox.h"

#include <doctest/doctest.h>

#include <atomic>
#include <optional>
#include <thread>
#include <vector>

namespace {

struct Mail {
  std::optional<int> value;  // latest wins
  int posts = 0;             // how many posts this delivery merged
  bool stop = false;
  void merge(Mail&& newer) {
    if (newer.value) value = newer.value;
    posts += newer.posts;
    stop = stop || newer.stop;
  }
};

Mail valueMail(int v) {
  Mail m;
  m.value = v;
  m.posts = 1;
  return m;
}

struct LoopFixture {
  uv_loop_t loop{};
  LoopFixture() { REQUIRE(uv_loop_init(&loop) == 0); }
  ~LoopFixture() { CHECK(uv_loop_close(&loop) == 0); }
};

}  // namespace

TEST_CASE("mailbox: posts from another thread arrive in order, newest value last, none lost") {
  LoopFixture f;
  hdnsd::uvx::Mailbox<Mail> box;
  std::vector<int> seen;
  int posts = 0;
  std::thread::id handlerThread;
  REQUIRE(box.open(&f.loop, [&](Mail&& m) {
    handlerThread = std::this_thread::get_id();
    posts += m.posts;
    if (m.value) seen.push_back(*m.value);
    if (m.stop) box.close();  // the worker's shutdown: closes from inside its own callback
  }));
  constexpr int kPosts = 20000;
  std::thread poster([&] {
    for (int i = 1; i <= kPosts; ++i) CHECK(box.post(valueMail(i)));
    Mail stop;
    stop.stop = true;
    CHECK(box.post(std::move(stop)));
  });
  uv_run(&f.loop, UV_RUN_DEFAULT);  // ends once the handler closed the mailbox
  poster.join();
  CHECK(handlerThread == std::this_thread::get_id());
  CHECK(posts == kPosts);                 // every post counted once, merged or not
  REQUIRE(!seen.empty());
  CHECK(seen.back() == kPosts);           // the newest value is the one left applied
  for (size_t i = 1; i < seen.size(); ++i) CHECK(seen[i - 1] < seen[i]);  // never an older one after a newer
  CHECK(!box.isOpen());
  CHECK(!box.post(valueMail(1)));         // closed: dropped, no uv_async_send on a closed handle
}

TEST_CASE("mailbox: several posts before the loop turns are one delivery of the newest") {
  LoopFixture f;
  hdnsd::uvx::Mailbox<Mail> box;
  std::vector<Mail> got;
  REQUIRE(box.open(&f.loop, [&](Mail&& m) { got.push_back(m); }));
  CHECK(box.post(valueMail(1)));
  CHECK(box.post(valueMail(2)));
  CHECK(box.post(valueMail(3)));
  uv_run(&f.loop, UV_RUN_NOWAIT);
  REQUIRE(got.size() == 1);
  CHECK(*got[0].value == 3);
  CHECK(got[0].posts == 3);
  box.close();
  uv_run(&f.loop, UV_RUN_DEFAULT);  // the async handle's close callback frees it
}

TEST_CASE("mailbox: mail unread at close() is dropped, never delivered") {
  LoopFixture f;
  hdnsd::uvx::Mailbox<Mail> box;
  int deliveries = 0;
  REQUIRE(box.open(&f.loop, [&](Mail&&) { ++deliveries; }));
  CHECK(box.post(valueMail(7)));
  box.close();
  uv_run(&f.loop, UV_RUN_DEFAULT);
  CHECK(deliveries == 0);
  CHECK(!box.post(valueMail(8)));
}

TEST_CASE("mailbox: never opened refuses posts") {
  hdnsd::uvx::Mailbox<Mail> box;
  CHECK(!box.isOpen());
  CHECK(!box.post(valueMail(1)));
  box.close();  // harmless
}
