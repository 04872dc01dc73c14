#include "common/compress/dictionary_deflate.h"

#include <cstdint>
#include <limits>

namespace common::compress {
namespace {

constexpr int kLevel = 6;
constexpr size_t kMaxDictionary = 32 * 1024;

std::string_view UsableDictionary(const std::string& d) {
  std::string_view v(d);
  return v.size() > kMaxDictionary ? v.substr(v.size() - kMaxDictionary) : v;
}

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// Reads a varint from the front of `in` and drops it; false when malformed or truncated.
bool GetVarint(std::string_view* in, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in->empty()) return false;
    const auto byte = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    *v |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

Bytef* Bytes(std::string_view s) { return reinterpret_cast<Bytef*>(const_cast<char*>(s.data())); }

// The deflate window (log2): twice the dictionary, so a text as long as the dictionary still
// reaches all of it, between 4 KiB and deflate's 32 KiB; the full window without a dictionary.
// The compressor's state takes ~4 windows (256 KiB at 32 KiB, 64 KiB at 8 KiB), and each
// decompression allocates one window.
int WindowBits(size_t dictionary_size) {
  if (dictionary_size == 0) return 15;
  int bits = 12;
  while (bits < 15 && (size_t{1} << bits) < 2 * dictionary_size) ++bits;
  return bits;
}

}  // namespace

DictionaryDeflate::DictionaryDeflate(std::string dictionary)
    : dictionary_(std::move(dictionary)),
      window_bits_(WindowBits(UsableDictionary(dictionary_).size())) {}

DictionaryDeflate::~DictionaryDeflate() {
  if (deflate_ready_) deflateEnd(&deflate_);
}

Result<std::string> DictionaryDeflate::Compress(std::string_view text) const {
  if (text.size() > std::numeric_limits<uInt>::max() / 2) {
    return InvalidArgumentError("cannot compress {} bytes in one piece", text.size());
  }
  std::lock_guard<std::mutex> lock(deflate_mu_);
  int rc = Z_OK;
  if (!deflate_ready_) {
    // Negative window bits: raw deflate, no zlib header or checksum. The hash table and the
    // literal buffer are sized to the window (memLevel 8 at 32 KiB, zlib's default).
    rc = deflateInit2(&deflate_, kLevel, Z_DEFLATED, -window_bits_, window_bits_ - 7,
                      Z_DEFAULT_STRATEGY);
    if (rc != Z_OK) return InternalError("deflateInit2 failed: {}", rc);
    deflate_ready_ = true;
  } else if ((rc = deflateReset(&deflate_)) != Z_OK) {
    return InternalError("deflateReset failed: {}", rc);
  }
  const std::string_view dict = UsableDictionary(dictionary_);
  if (!dict.empty()) {
    rc = deflateSetDictionary(&deflate_, Bytes(dict), static_cast<uInt>(dict.size()));
    if (rc != Z_OK) return InternalError("deflateSetDictionary failed: {}", rc);
  }
  std::string out;
  PutVarint(text.size(), &out);
  const size_t header = out.size();
  out.resize(header + deflateBound(&deflate_, static_cast<uLong>(text.size())));
  deflate_.next_in = Bytes(text);
  deflate_.avail_in = static_cast<uInt>(text.size());
  deflate_.next_out = reinterpret_cast<Bytef*>(out.data() + header);
  deflate_.avail_out = static_cast<uInt>(out.size() - header);
  rc = deflate(&deflate_, Z_FINISH);
  if (rc != Z_STREAM_END) return InternalError("deflate did not finish: {}", rc);
  out.resize(out.size() - deflate_.avail_out);
  out.shrink_to_fit();  // kept for long: the bound is ~0.1 % above the input
  return out;
}

Result<std::string> DictionaryDeflate::Decompress(std::string_view compressed) const {
  std::string_view in = compressed;
  uint64_t size = 0;
  if (!GetVarint(&in, &size) || size > std::numeric_limits<uInt>::max() / 2) {
    return DataLossError("compressed text has no valid length prefix");
  }
  z_stream s{};
  int rc = inflateInit2(&s, -window_bits_);
  if (rc != Z_OK) return InternalError("inflateInit2 failed: {}", rc);
  const std::string_view dict = UsableDictionary(dictionary_);
  if (!dict.empty()) {
    // Raw inflate takes the dictionary up front (there is no header asking for it).
    rc = inflateSetDictionary(&s, Bytes(dict), static_cast<uInt>(dict.size()));
    if (rc != Z_OK) {
      inflateEnd(&s);
      return InternalError("inflateSetDictionary failed: {}", rc);
    }
  }
  std::string out(size, '\0');
  s.next_in = Bytes(in);
  s.avail_in = static_cast<uInt>(in.size());
  s.next_out = reinterpret_cast<Bytef*>(out.data());
  s.avail_out = static_cast<uInt>(size);
  rc = inflate(&s, Z_FINISH);
  bool filled = s.avail_out == 0;
  if (rc == Z_BUF_ERROR && filled) {
    // All the declared bytes came out but the stream did not end yet: it may end without more
    // output (then it was exact), or hold more than declared (one spare byte shows that).
    char spare = 0;
    s.next_out = reinterpret_cast<Bytef*>(&spare);
    s.avail_out = 1;
    rc = inflate(&s, Z_FINISH);
    if (s.avail_out == 0) rc = Z_DATA_ERROR;
  }
  const bool complete = rc == Z_STREAM_END && filled && s.avail_in == 0;
  inflateEnd(&s);
  if (!complete) {
    return DataLossError("compressed text is corrupt or does not match its length {} (zlib {})",
                         size, rc);
  }
  return out;
}

}  // namespace common::compress
