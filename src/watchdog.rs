//! The systemd watchdog.
