//! This boot's id: a file last written under another one outlived a
//! kernel crash or a reboot, so what was written to it without a sync may
//! be gone. The embedded store records it at every open
//! ([`crate::PendingPayment::unrecorded`]); the accept table keeps it in
//! its header.

/// The bytes a boot id takes (Linux's is 36 characters; the rest zeros).
pub const BOOT_ID_LEN: usize = 40;

/// This boot's id (Linux). Elsewhere all zeros: no crash can be told from
/// it, and what relies on it must not.
pub fn boot_id() -> [u8; BOOT_ID_LEN] {
    let mut out = [0; BOOT_ID_LEN];
    if let Ok(text) = std::fs::read_to_string("/proc/sys/kernel/random/boot_id") {
        let text = text.trim().as_bytes();
        let n = text.len().min(out.len());
        out[..n].copy_from_slice(&text[..n]);
    }
    out
}

/// Whether `id` says anything: not the zeros of a system without boot ids.
pub fn is_known(id: &[u8; BOOT_ID_LEN]) -> bool {
    id != &[0; BOOT_ID_LEN]
}
