# Included by the server's install(CODE) at install time: writes the systemd unit and installs
# it with the commented configuration file, for the install prefix then in force. A package
# (CPack, prefix /usr) gets /usr/lib/systemd/system/cortex-connectors.service and
# /etc/cortex-connectors/cortex-connectors.env; `cmake --install --prefix DIR` puts both under
# DIR. Needs CORTEX_CONNECTORS_PACKAGING_DIR, CORTEX_CONNECTORS_HAVE_SYSTEMD and
# CORTEX_CONNECTORS_WORK_DIR.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(CONNECTORS_SYSCONFDIR "/etc")
else()
  set(CONNECTORS_SYSCONFDIR "${CMAKE_INSTALL_PREFIX}/etc")
endif()
set(CONNECTORS_BINDIR "${CMAKE_INSTALL_PREFIX}/bin")
set(CONNECTORS_DOCDIR "${CMAKE_INSTALL_PREFIX}/share/doc/cortex-connectors-server")
if(CORTEX_CONNECTORS_HAVE_SYSTEMD)
  set(CONNECTORS_SERVICE_TYPE notify)
  # No ping for this long: systemd restarts the server (it pings every 15 s while it answers).
  set(CONNECTORS_WATCHDOG "WatchdogSec=30s")
else()
  # Built without libsystemd: the server cannot say READY=1, so systemd counts it started at
  # exec, and there is no watchdog.
  set(CONNECTORS_SERVICE_TYPE exec)
  set(CONNECTORS_WATCHDOG "# WatchdogSec= needs a server built with libsystemd (sd_notify).")
endif()
# One directory per destination: cpack and an install into another prefix may run at once.
string(SHA1 destination "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}")
set(work_dir "${CORTEX_CONNECTORS_WORK_DIR}/${destination}")
configure_file("${CORTEX_CONNECTORS_PACKAGING_DIR}/cortex-connectors.service.in"
               "${work_dir}/cortex-connectors.service" @ONLY)
file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system" TYPE FILE
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
     FILES "${work_dir}/cortex-connectors.service")
file(INSTALL DESTINATION "${CONNECTORS_SYSCONFDIR}/cortex-connectors" TYPE FILE
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
     FILES "${CORTEX_CONNECTORS_PACKAGING_DIR}/cortex-connectors.env")
