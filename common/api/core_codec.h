// JSON codecs of core.h. Same conventions as v1alpha1/codec.h.
#pragma once

#include <string>
#include <string_view>

#include "common/api/core.h"
#include "common/status/status.h"

namespace common::api {

Result<Lease> DecodeLease(std::string_view json);
std::string EncodeLease(const Lease& lease);

Result<Event> DecodeEvent(std::string_view json);
std::string EncodeEvent(const Event& event);

Result<Node> DecodeNode(std::string_view json);

std::string FormatMicroTime(MicroTime t);
Result<MicroTime> ParseMicroTime(std::string_view s);

}  // namespace common::api
