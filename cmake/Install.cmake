# `cmake --install` and the Debian package (CPack): the binary, the man page vmemfs(1), the
# bash completion and the systemd unit template, at the paths Debian's tools look in.
include(GNUInstallDirs)
# `cmake --install` and cpack need vmemfs built, not the tests and benchmarks.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

configure_file(doc/vmemfs.1 ${CMAKE_CURRENT_BINARY_DIR}/vmemfs.1 @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/vmemfs.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
# bash-completion loads completions/<command> on first use of <command>.
install(FILES packaging/vmemfs.bash-completion
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME vmemfs)
# PREFIX/lib/systemd/system: systemd reads /usr/lib/... (the .deb) and /usr/local/lib/...
# (a default `cmake --install`).
set(VMEMFS_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING
    "Where the systemd unit template goes, relative to the install prefix")
install(FILES packaging/vmemfs-libvirt@.service DESTINATION ${VMEMFS_SYSTEMD_UNIT_DIR})

# cpack -G DEB in the build directory gives vmemfs_<version>_<arch>.deb; dpkg-shlibdeps
# finds the libraries the binary links (libfuse3, libvirt, libbpf, ...) and declares them.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME vmemfs)
set(CPACK_PACKAGE_VENDOR "vmemfs")
set(CPACK_PACKAGE_CONTACT "vmemfs maintainers <maintainers@users.noreply.github.com>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "virtual machines' memory as files (FUSE)")
set(CPACK_PACKAGE_DESCRIPTION
    "vmemfs mounts memory snapshots, running QEMU guests and libvirt domains as directories\n\
of files: physical memory, kernel virtual memory, registers, processes and symbols.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# mount -t fuse.vmemfs and the unit need mount.fuse3 and fusermount3.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "fuse3")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "libvirt-clients, qemu-system-x86")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
# Only the program: the libraries, tests and benchmarks are not installed.
set(CPACK_INSTALL_CMAKE_PROJECTS "${CMAKE_BINARY_DIR};${PROJECT_NAME};ALL;/")
include(CPack)
