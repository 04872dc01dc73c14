#include "common/api/v1alpha1/types.h"

#include <array>
#include <utility>

#include <fmt/format.h>

namespace common::api::v1alpha1 {
namespace {

template <typename E, size_t N>
using NameTable = std::array<std::pair<E, std::string_view>, N>;

constexpr NameTable<VolumePhase, 7> kPhaseNames{{
    {VolumePhase::kNew, "New"},
    {VolumePhase::kRequested, "Requested"},
    {VolumePhase::kSyncing, "Syncing"},
    {VolumePhase::kSynced, "Synced"},
    {VolumePhase::kExpanding, "Expanding"},
    {VolumePhase::kReplacing, "Replacing"},
    {VolumePhase::kDeleting, "Deleting"},
}};
constexpr NameTable<PartitionState, 9> kPartitionStateNames{{
    {PartitionState::kRequested, "Requested"},
    {PartitionState::kCreated, "Created"},
    {PartitionState::kSpare, "Spare"},
    {PartitionState::kSyncing, "Syncing"},
    {PartitionState::kSynced, "Synced"},
    {PartitionState::kFaulty, "Faulty"},
    {PartitionState::kMissing, "Missing"},
    {PartitionState::kReplacing, "Replacing"},
    {PartitionState::kDeleting, "Deleting"},
}};
constexpr NameTable<MemberRole, 2> kRoleNames{{
    {MemberRole::kLocal, "local"},
    {MemberRole::kRemote, "remote"},
}};
constexpr NameTable<MemberState, 2> kMemberStateNames{{
    {MemberState::kPresent, "present"},
    {MemberState::kRetired, "retired"},
}};
constexpr NameTable<Transport, 2> kTransportNames{{
    {Transport::kTcp, "tcp"},
    {Transport::kRdma, "rdma"},
}};

template <typename E, size_t N>
std::string_view Lookup(const NameTable<E, N>& table, E v) {
  for (const auto& [value, name] : table) {
    if (value == v) return name;
  }
  return "";
}

template <typename E, size_t N>
std::optional<E> Parse(const NameTable<E, N>& table, std::string_view s) {
  for (const auto& [value, name] : table) {
    if (name == s) return value;
  }
  return std::nullopt;
}

}  // namespace

std::string_view Name(VolumePhase v) { return Lookup(kPhaseNames, v); }
std::string_view Name(PartitionState v) { return Lookup(kPartitionStateNames, v); }
std::string_view Name(MemberRole v) { return Lookup(kRoleNames, v); }
std::string_view Name(MemberState v) { return Lookup(kMemberStateNames, v); }
std::string_view Name(Transport v) { return Lookup(kTransportNames, v); }
std::optional<VolumePhase> ParseVolumePhase(std::string_view s) { return Parse(kPhaseNames, s); }
std::optional<PartitionState> ParsePartitionState(std::string_view s) {
  return Parse(kPartitionStateNames, s);
}
std::optional<MemberRole> ParseMemberRole(std::string_view s) { return Parse(kRoleNames, s); }
std::optional<MemberState> ParseMemberState(std::string_view s) {
  return Parse(kMemberStateNames, s);
}
std::optional<Transport> ParseTransport(std::string_view s) { return Parse(kTransportNames, s); }

std::string NodeDeviceName(std::string_view node, std::string_view device) {
  return fmt::format("{}-{}", node, device);
}

}  // namespace common::api::v1alpha1
