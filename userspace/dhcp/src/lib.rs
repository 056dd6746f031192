//! provd-dhcp
