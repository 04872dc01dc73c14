// DictionaryDeflate: compresses many small, similar texts one by one (raw deflate, zlib) against a
// preset dictionary, so what every text shares with the dictionary (JSON field names, common
// values) costs a few bits instead of being stored again in each one. A cache of ~2 KiB objects
// of one kind shrinks about 8x without a dictionary and 10-20x with one made from an object of
// the same kind.
//
// Each compressed text starts with its uncompressed length (a varint), so decompression
// allocates once and checks that exactly that many bytes come out.
//
// Thread contract: Compress and Decompress are safe from any thread. Compress reuses one deflate
// stream under a mutex (setting one up allocates four windows: 64 KiB for a dictionary up to
// 4 KiB, 256 KiB from 16 KiB on); Decompress sets up its own inflate stream per call (~7 KiB and
// a window).
#pragma once

#include <zlib.h>

#include <mutex>
#include <string>
#include <string_view>

#include "common/status/status.h"

namespace common::compress {

class DictionaryDeflate {
 public:
  // `dictionary`: the bytes most likely to recur, the most frequent last (deflate refers back at
  // most 32 KiB, so only the dictionary's last 32 KiB are used). It may be empty.
  explicit DictionaryDeflate(std::string dictionary);
  DictionaryDeflate(const DictionaryDeflate&) = delete;
  DictionaryDeflate& operator=(const DictionaryDeflate&) = delete;
  ~DictionaryDeflate();

  Result<std::string> Compress(std::string_view text) const;
  // DataLoss when `compressed` is not the output of Compress with the same dictionary (corrupt,
  // truncated, or too long).
  Result<std::string> Decompress(std::string_view compressed) const;

 private:
  const std::string dictionary_;
  const int window_bits_;  // log2 of the deflate window, 12..15
  mutable std::mutex deflate_mu_;
  mutable z_stream deflate_{};          // guarded by deflate_mu_
  mutable bool deflate_ready_ = false;  // guarded by deflate_mu_
};

}  // namespace common::compress
