# Block-device seams: Exec, Drives, Partitions, Filesystem (included by agent/sys/CMakeLists.txt).
set(_blk ${CMAKE_CURRENT_SOURCE_DIR})

# Interfaces' helpers (naming, geometry decisions, mountinfo parsing) and the in-memory fakes.
add_library(meshstor_agent_sys_block STATIC
  ${_blk}/exec.cc
  ${_blk}/drives.cc
  ${_blk}/partitions.cc
  ${_blk}/filesystem.cc
  ${_blk}/fake/block_model.cc
  ${_blk}/fake/exec.cc
  ${_blk}/fake/drives.cc
  ${_blk}/fake/partitions.cc
  ${_blk}/fake/filesystem.cc)
target_link_libraries(meshstor_agent_sys_block PUBLIC meshstor_status PRIVATE OpenSSL::Crypto)

# The Linux implementations: the only code here that forks or includes libfdisk/libblkid/libmount.
add_library(meshstor_agent_sys_linux_block STATIC
  ${_blk}/linux/exec.cc
  ${_blk}/linux/drives.cc
  ${_blk}/linux/partitions.cc
  ${_blk}/linux/filesystem.cc
  ${_blk}/linux/modules.cc)
target_link_libraries(meshstor_agent_sys_linux_block
  PUBLIC meshstor_status meshstor_agent_sys_block
  PRIVATE PkgConfig::FDISK PkgConfig::BLKID PkgConfig::MOUNT OpenSSL::Crypto)

# Unit tests: contracts against the fakes, plus Linux pieces that need neither root nor devices
# (LinuxExec with /bin/sh, LinuxDrives over a fake sysfs tree, naming, the mount table).
meshstor_test_sources(agent_tests
  ${_blk}/contract/fake_contract_test.cc
  ${_blk}/block_helpers_test.cc
  ${_blk}/linux/exec_test.cc
  ${_blk}/linux/filesystem_test.cc
  ${_blk}/linux/modules_test.cc)
meshstor_test_libraries(agent_tests meshstor_agent_sys_block meshstor_agent_sys_linux_block)

# Lab tests: the same contracts against the Linux implementations on loop devices or the spare
# drives named by MESHSTOR_LAB_SPARE_DRIVES. Root only; run inside the lab VM, not by ctest.
add_executable(agent_sys_lab_tests
  ${_blk}/contract/linux_lab_test.cc
  $<TARGET_OBJECTS:meshstor_catch_main>)
target_link_libraries(agent_sys_lab_tests PRIVATE meshstor_agent_sys_linux_block
  meshstor_agent_sys_block Catch2::Catch2)
unset(_blk)
