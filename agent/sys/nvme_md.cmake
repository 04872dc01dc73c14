# NVMe-oF and MD seams: NvmetTarget, NvmeHost, Md, Uevents (included by agent/sys/CMakeLists.txt).
set(_nm ${CMAKE_CURRENT_SOURCE_DIR})

# Interfaces' helpers (NQN/array naming, uevent parsing) and the in-memory fakes.
add_library(meshstor_agent_sys_nvme_md STATIC
  ${_nm}/nvmet.cc
  ${_nm}/nvme_host.cc
  ${_nm}/md.cc
  ${_nm}/uevents.cc
  ${_nm}/fake/nvmet.cc
  ${_nm}/fake/nvme_host.cc
  ${_nm}/fake/md.cc
  ${_nm}/fake/uevents.cc
  ${_nm}/fake/md_events.cc)
target_link_libraries(meshstor_agent_sys_nvme_md PUBLIC meshstor_status)

# The Linux implementations: configfs, sysfs, /dev/nvme-fabrics, mdadm through Exec, netlink.
add_library(meshstor_agent_sys_linux_nvme_md STATIC
  ${_nm}/linux/nvme_md_fs.cc
  ${_nm}/linux/nvmet.cc
  ${_nm}/linux/nvme_host.cc
  ${_nm}/linux/md.cc
  ${_nm}/linux/uevents.cc
  ${_nm}/linux/md_events.cc)
target_link_libraries(meshstor_agent_sys_linux_nvme_md
  PUBLIC meshstor_status meshstor_agent_sys_nvme_md
  PRIVATE PkgConfig::LIBNL)

set(_nm_contracts
  ${_nm}/contract/nvmet_contract.cc
  ${_nm}/contract/nvme_host_contract.cc
  ${_nm}/contract/md_contract.cc)

# Unit tests: the contracts against the fakes, helpers, and the Linux code over temporary
# configfs/sysfs trees and a scripted Exec.
meshstor_test_sources(agent_tests
  ${_nm_contracts}
  ${_nm}/contract/nvme_md_fake_contract_test.cc
  ${_nm}/nvme_md_helpers_test.cc
  ${_nm}/fake/nvme_md_fakes_test.cc
  ${_nm}/linux/nvmet_test.cc
  ${_nm}/linux/nvme_md_fs_test.cc
  ${_nm}/linux/nvme_host_test.cc
  ${_nm}/linux/md_test.cc
  ${_nm}/linux/uevents_test.cc
  ${_nm}/linux/md_events_test.cc)
meshstor_test_libraries(agent_tests meshstor_agent_sys_nvme_md meshstor_agent_sys_linux_nvme_md)

# Lab tests (root, real nvmet/nvme-tcp/md in the lab VM): the same contracts against linux/.
set(_nm_lab_sources ${_nm_contracts} ${_nm}/contract/nvme_md_lab_test.cc)
if(TARGET agent_sys_lab_tests)
  target_sources(agent_sys_lab_tests PRIVATE ${_nm_lab_sources})
  target_link_libraries(agent_sys_lab_tests PRIVATE meshstor_agent_sys_linux_nvme_md
    meshstor_agent_sys_nvme_md)
else()
  add_executable(agent_sys_nvme_md_lab_tests ${_nm_lab_sources}
    $<TARGET_OBJECTS:meshstor_catch_main>)
  target_link_libraries(agent_sys_nvme_md_lab_tests PRIVATE meshstor_agent_sys_linux_nvme_md
    meshstor_agent_sys_nvme_md meshstor_agent_sys_linux_block meshstor_agent_sys_block
    Catch2::Catch2)
endif()
unset(_nm_lab_sources)
unset(_nm_contracts)
unset(_nm)
