// libFuzzer target for the answer writer: parse(write(x)) == x. The input describes a query and
// a list of records (sections, owners from a small pool of names that share suffixes so
// compression has work, A/AAAA/TXT/SRV opaque RDATA, CNAME/PTR names, SOA), some rolled back
// with mark()/rollback(); ResponseWriter writes them within a size limit, and an independent
// walker written here (decompression with backward-only pointers, no code shared with
// src/dns) reads the message back and must find exactly the records that were accepted, in
// order, byte for byte (names compared case-insensitively, as compression matches them).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "hdnsd/dns/query.h"
#include "hdnsd/dns/writer.h"

using namespace hdnsd;

namespace {

struct Input {
  const uint8_t* p;
  size_t n;
  uint8_t byte() { return n ? (--n, *p++) : 0; }
  uint16_t u16() { return uint16_t(byte() << 8 | byte()); }
};

struct Rec {
  int section;
  std::string owner;  // uncompressed wire; empty: the question name
  uint16_t type;
  uint32_t ttl;
  dns::RdataKind kind;
  std::string rdata;  // uncompressed wire
};

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return s;
}

// The independent walker: reads a (possibly compressed) name at `pos`, returns its uncompressed
// wire form or "" on any violation. Pointers must go strictly backwards (no loops).
std::string readName(const uint8_t* m, size_t len, size_t* pos) {
  std::string out;
  size_t p = *pos, end = 0;
  bool jumped = false;
  for (int hops = 0; hops < 128; ++hops) {
    if (p >= len) return "";
    uint8_t l = m[p];
    if ((l & 0xC0) == 0xC0) {
      if (p + 1 >= len) return "";
      size_t target = size_t(l & 0x3F) << 8 | m[p + 1];
      if (target >= p) return "";
      if (!jumped) end = p + 2;
      jumped = true;
      p = target;
      continue;
    }
    if (l & 0xC0) return "";
    if (p + 1 + l > len) return "";
    out.append(reinterpret_cast<const char*>(m + p), 1 + l);
    if (out.size() > 255) return "";
    if (l == 0) {
      *pos = jumped ? end : p + 1;
      return out;
    }
    p += 1 + l;
  }
  return "";
}

uint16_t get16(const uint8_t* m) { return uint16_t(m[0] << 8 | m[1]); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in{data, size};
  // A pool of names: base labels from the input, suffixes shared.
  const char* kSuffixes[] = {"\x07" "cluster" "\x05" "local", "\x03" "svc" "\x07" "cluster" "\x05" "local",
                             "\x07" "example" "\x03" "com"};
  std::vector<std::string> pool;
  for (int i = 0; i < 6; ++i) {
    std::string n;
    int labels = in.byte() % 3;
    for (int l = 0; l < labels; ++l) {
      int len = 1 + in.byte() % 12;
      n.push_back(char(len));
      for (int c = 0; c < len; ++c) n.push_back(char("aBc-x0_Z"[in.byte() % 8]));
    }
    n += kSuffixes[in.byte() % 3];
    n.push_back('\0');
    pool.push_back(n);
  }
  // The query: a pool name, a type, maybe EDNS with DO.
  const std::string qname = pool[in.byte() % pool.size()];
  const uint16_t qtype = in.u16();
  const uint8_t ednsMode = in.byte() % 3;
  std::vector<uint8_t> query = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, uint8_t(ednsMode ? 1 : 0)};
  query.insert(query.end(), qname.begin(), qname.end());
  query.insert(query.end(), {uint8_t(qtype >> 8), uint8_t(qtype), 0, 1});
  if (ednsMode) query.insert(query.end(), {0, 0, 41, 0x04, 0xd0, 0, 0, uint8_t(ednsMode == 2 ? 0x80 : 0), 0, 0, 0});
  dns::Query q;
  if (!dns::parseQuery(query, &q)) return 0;
  if (q.qtype == dns::kTypeOPT) return 0;

  const size_t limit = 512 + (size_t(in.u16()) % (65535 - 512));
  static uint8_t buf[65535 + 64];
  dns::ResponseWriter w({buf, limit + 64});
  if (!w.start(query, q, limit)) return 0;

  std::vector<Rec> want;
  std::vector<std::pair<dns::ResponseWriter::Mark, size_t>> marks;
  int section = 0;
  while (in.n > 0 && want.size() < 400) {
    const uint8_t op = in.byte();
    if (op % 16 == 0) {
      marks.emplace_back(w.mark(), want.size());
      continue;
    }
    if (op % 16 == 1 && !marks.empty()) {
      w.rollback(marks.back().first);
      want.resize(marks.back().second);
      marks.pop_back();
      section = want.empty() ? 0 : want.back().section;
      continue;
    }
    section = std::max(section, int(in.byte() % 3));
    Rec r;
    r.section = section;
    const uint8_t o = in.byte() % 8;
    r.owner = o < 6 ? pool[o] : std::string();
    r.ttl = uint32_t(in.u16()) << 8;
    r.kind = dns::RdataKind::kOpaque;
    switch (op % 6) {
      case 0: r.type = dns::kTypeA; r.rdata.assign(4, char(in.byte())); break;
      case 1: r.type = dns::kTypeAAAA; r.rdata.assign(16, char(in.byte())); break;
      case 2: {  // TXT: character-strings
        r.type = dns::kTypeTXT;
        int len = in.byte() % 80;
        r.rdata.push_back(char(len));
        for (int i = 0; i < len; ++i) r.rdata.push_back(char(in.byte()));
        break;
      }
      case 3: {  // SRV: the target must not be compressed (RFC 2782)
        r.type = dns::kTypeSRV;
        for (int i = 0; i < 6; ++i) r.rdata.push_back(char(in.byte()));
        r.rdata += pool[in.byte() % pool.size()];
        break;
      }
      case 4:
        r.type = in.byte() % 2 ? dns::kTypeCNAME : dns::kTypePTR;
        r.kind = dns::RdataKind::kName;
        r.rdata = pool[in.byte() % pool.size()];
        break;
      default:
        r.type = dns::kTypeSOA;
        r.kind = dns::RdataKind::kSoa;
        r.rdata = pool[in.byte() % pool.size()] + pool[in.byte() % pool.size()];
        for (int i = 0; i < 20; ++i) r.rdata.push_back(char(in.byte()));
        break;
    }
    dns::Owner owner = r.owner.empty() ? dns::Owner::question() : dns::Owner::name(r.owner);
    if (w.addRecord(dns::Section(r.section), owner, r.type, dns::kClassIN, r.ttl, {r.rdata, r.kind}))
      want.push_back(r);
  }
  const size_t n = w.finish();
  if (n > limit) std::abort();

  // Read it back.
  const uint8_t* m = buf;
  if (n < 12 || get16(m) != 0x1234 || !(m[2] & 0x80)) std::abort();
  uint16_t counts[3] = {get16(m + 6), get16(m + 8), get16(m + 10)};
  if (get16(m + 4) != 1) std::abort();
  size_t pos = 12;
  if (readName(m, n, &pos) != qname) std::abort();  // the question exactly as asked
  pos += 4;
  size_t idx = 0;
  bool sawOpt = false;
  for (int s = 0; s < 3; ++s) {
    for (uint16_t i = 0; i < counts[s]; ++i) {
      std::string owner = readName(m, n, &pos);
      if (owner.empty() || pos + 10 > n) std::abort();
      uint16_t type = get16(m + pos), cls = get16(m + pos + 2);
      uint32_t ttl = uint32_t(get16(m + pos + 4)) << 16 | get16(m + pos + 6);
      uint16_t rdlen = get16(m + pos + 8);
      pos += 10;
      if (pos + rdlen > n) std::abort();
      if (s == 2 && type == dns::kTypeOPT && idx == want.size()) {  // ours, last
        if (owner != std::string(1, '\0') || sawOpt || !ednsMode) std::abort();
        if (ednsMode == 2 && !(m[pos - 4] & 0x80)) std::abort();  // DO echoed
        sawOpt = true;
        pos += rdlen;
        continue;
      }
      if (idx >= want.size()) std::abort();
      const Rec& r = want[idx++];
      if (r.section != s || type != r.type || cls != dns::kClassIN || ttl != r.ttl) std::abort();
      if (lower(owner) != lower(r.owner.empty() ? qname : r.owner)) std::abort();
      if (r.kind == dns::RdataKind::kOpaque) {
        if (rdlen != r.rdata.size() || std::memcmp(m + pos, r.rdata.data(), rdlen) != 0) std::abort();
      } else {
        size_t rp = pos;
        std::string got = readName(m, pos + rdlen, &rp);
        if (got.empty()) std::abort();
        if (r.kind == dns::RdataKind::kSoa) {
          std::string second = readName(m, pos + rdlen, &rp);
          if (second.empty()) std::abort();
          got += second;
          if (rp + 20 != pos + rdlen || std::memcmp(m + rp, r.rdata.data() + r.rdata.size() - 20, 20) != 0)
            std::abort();
          if (lower(got) != lower(r.rdata.substr(0, r.rdata.size() - 20))) std::abort();
        } else if (rp != pos + rdlen || lower(got) != lower(r.rdata)) {
          std::abort();
        }
      }
      pos += rdlen;
    }
  }
  if (idx != want.size() || pos != n || bool(ednsMode) != sawOpt) std::abort();
  return 0;
}

#include "standalone_main.h"
