// The upstream half of an autopath answer: an answer for the bare name X, re-written as the
// answer to the client's first search name Q = X.<ns>.svc.<zone>:
//
//   header (flags, RCODE of X's answer)  question Q (as the client asked it)
//   answer:     Q CNAME X  (TTL: the smallest TTL of X's answer records, capped)
//               X's answer records
//   authority, additional: X's (its OPT dropped)
//
// Names of X's message are read (decompressed, lower-cased) and written again with
// ResponseWriter's compression: the question grows, so the upstream's pointers cannot be kept.
// Names inside RDATA are decompressed for the RFC 1035 types that may be compressed (CNAME, NS,
// PTR, SOA, MX, ...; SRV defensively); every other RDATA is copied as it is (RFC 3597 4).
// Bytes in, bytes out, no allocation (a few hundred bytes of stack); fuzzable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace hdnsd::autopath {

// answer: a whole DNS response whose question is X (its question name is read from it).
// question: the client's question as asked: name (uncompressed wire), QTYPE, QCLASS.
// Writes the new message (no OPT; ID and flags as in `answer`) into out and returns its size;
// records that do not fit are left out (the answer section whole or TC=1 with only the CNAME).
// 0: `answer` is malformed, or the question does not fit.
size_t prependCname(std::span<const uint8_t> answer, std::span<const uint8_t> question, uint32_t ttlCap_s,
                    std::span<uint8_t> out) noexcept;

}  // namespace hdnsd::autopath
