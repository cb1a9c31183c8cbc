//! The accept table's file: its layout, its state words and the probing
//! every process does ([`super`] says the rules); whether it lies on a
//! memory filesystem ([`on_memory`]) and which store file it was filled for
//! ([`store_key`]).
//!
//! ```text
//! 0      header: magic "RRACCPT1", slots_log2:u32, generation:u64 (at 16),
//!        trusted:u64 (24), boot id:[40] (32), store key:u64 (80),
//!        stable:u64 (88: a 2xx from the table waits for its page's sync)
//! 128    owners: 16 × 64 bytes: head:u32, tail:u32 (+4), incarnation:u32 (+8),
//!        duplicates answered:u32 (+12), of which the core counted:u32 (+16)
//! 4096   rings: 16 × RING entries of 16 bytes, one ring per owner:
//!        slot:u64, accepted_at:i64 (UTC ms)
//! ...    slots: 2^slots_log2 × 32 bytes: state:u64, id:[u64; 2], amount:i64
//! ```
//!
//! A slot holds what deciding needs; the time of acceptance travels in the
//! ring, which only the core reads. Slots are spread by hash, so every page
//! of them is soon touched: at 32 bytes, 2^17 slots are 4 MiB of memory
//! (shared by every process that maps the file, but counted in each one's
//! RSS). The file is written whole when made ([`allocate`]), not sparse.
//!
//! A slot's state word packs its generation (20 bits), kind (2), the owner
//! of its claim (4), that owner's incarnation (14) and the id's tag (24).

use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

use reroute_core::CorrelationId;

use super::owners::{INCARNATION_MASK, MAX_OWNERS};

pub const MAGIC: [u8; 8] = *b"RRACCPT1";
/// Slot indices each owner's ring holds: an edge more than this far ahead
/// of the core hands its payments over by frame instead.
pub const RING: u32 = 16 * 1024;
/// How many slots from an id's home one looks at: past them the id has no
/// room here, and the store decides.
pub const WINDOW: usize = 64;

const HEADER: usize = 4096;
const OWNERS_AT: usize = 128;
const OWNER_BYTES: usize = 64;
const SLOT_BYTES: usize = 32;
const ENTRY_BYTES: usize = 16;
const RINGS: usize = MAX_OWNERS * RING as usize * ENTRY_BYTES;
const BOOT_ID_AT: usize = 32;
pub use reroute_store::BOOT_ID_LEN;

/// Gives a new table file its `len` bytes, every block allocated, written
/// with zeros and synced: a slot's sync (at `stable`) then writes its page
/// and nothing else — never a new block, and the journal commit that
/// needs (measured: the preview's p99 at `stable` with the table 3.76–4.05
/// ms on a sparse file, 2.49–2.58 ms on this one, BENCHMARKS.md).
pub fn allocate(file: &std::fs::File, len: usize) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.set_len(len as u64)?;
    let zeros = vec![0u8; 1 << 20];
    for at in (0..len).step_by(zeros.len()) {
        file.write_all_at(&zeros[..zeros.len().min(len - at)], at as u64)?;
    }
    file.sync_all()
}

/// Whether `file` is on a memory filesystem (tmpfs, ramfs: `/dev/shm`,
/// `/run`). There a store into the mapping never starts a write to a disk:
/// writeback never cleans its pages, so a process is not stopped by a
/// page fault the next time it writes one — on a disk filesystem every
/// process takes one per page after each writeback (ext4 then journals
/// the file's times), up to a fifth of an edge's CPU in the Rinha preview
/// (BENCHMARKS.md). Such a file outlives every process, not the system
/// that holds it; `msync` does nothing there, so `stable` refuses it.
#[cfg(target_os = "linux")]
pub fn on_memory(file: &std::fs::File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: `statfs` is plain data, written by the call on success.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor and a pointer to a statfs.
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut fs) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // `linux/magic.h`'s, which the libc crate lacks.
    const RAMFS_MAGIC: u64 = 0x8584_58f6;
    let kind = fs.f_type as u64;
    Ok(kind == libc::TMPFS_MAGIC as u64 || kind == RAMFS_MAGIC)
}

/// Elsewhere every file is taken for a disk's.
#[cfg(not(target_os = "linux"))]
pub fn on_memory(_file: &std::fs::File) -> std::io::Result<bool> {
    Ok(false)
}

/// Which store file a table was filled for: its device, inode and birth
/// time (a file removed and made again is another store). 0 if unknown,
/// which the core never trusts.
pub fn store_key(db: &std::path::Path) -> u64 {
    use std::hash::{Hash, Hasher};
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(db) else {
        return 0;
    };
    let born = meta
        .created()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (meta.dev(), meta.ino(), born).hash(&mut h);
    h.finish().max(1)
}

/// The file's size for `2^slots_log2` slots.
pub fn file_len(slots_log2: u32) -> usize {
    HEADER + RINGS + (SLOT_BYTES << slots_log2)
}

/// A slot's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Empty = 0,
    /// An owner is writing it; nothing was answered for it yet.
    Claimed = 1,
    /// Its payment was accepted: the fields are final.
    Written = 2,
    /// An attempt to store it failed without telling whether it got in:
    /// the store decides.
    Unsure = 3,
}

/// A slot's state word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Word(pub u64);

const GEN_BITS: u32 = 20;
pub const GEN_MASK: u64 = (1 << GEN_BITS) - 1;

impl Word {
    pub fn new(generation: u64, kind: Kind, owner: u8, incarnation: u32, tag: u32) -> Self {
        Self(
            (generation & GEN_MASK) << 44
                | (kind as u64) << 42
                | u64::from(owner & 0xF) << 38
                | u64::from(incarnation & INCARNATION_MASK) << 24
                | u64::from(tag & 0xFF_FFFF),
        )
    }
    pub fn generation(self) -> u64 {
        self.0 >> 44
    }
    pub fn kind(self) -> Kind {
        match (self.0 >> 42) & 3 {
            0 => Kind::Empty,
            1 => Kind::Claimed,
            2 => Kind::Written,
            _ => Kind::Unsure,
        }
    }
    pub fn owner(self) -> u8 {
        ((self.0 >> 38) & 0xF) as u8
    }
    pub fn incarnation(self) -> u32 {
        ((self.0 >> 24) as u32) & INCARNATION_MASK
    }
    pub fn tag(self) -> u32 {
        (self.0 & 0xFF_FFFF) as u32
    }
    /// Free to claim in `generation`: never used, or used in an earlier
    /// generation and not held by a claim (a claim of any generation is its
    /// owner's until it publishes or dies, so nobody writes under it).
    pub fn is_free(self, generation: u64) -> bool {
        self.kind() == Kind::Empty
            || (self.kind() != Kind::Claimed && self.generation() != generation & GEN_MASK)
    }
    /// The same word, of another kind.
    pub fn with_kind(self, kind: Kind) -> Self {
        Self(self.0 & !(3 << 42) | (kind as u64) << 42)
    }
}

/// Where an id lives: its home slot and the tag its words carry.
pub fn locate(id: &CorrelationId, mask: usize) -> (usize, u32) {
    let bytes = id.as_bytes();
    let hi = u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default());
    let lo = u64::from_le_bytes(bytes[8..].try_into().unwrap_or_default());
    let h = mix(hi ^ mix(lo));
    ((h as usize) & mask, ((h >> 40) as u32) & 0xFF_FFFF)
}

/// splitmix64's finaliser: ids need not be random for slots to spread.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// One slot, as mapped.
#[repr(C)]
pub struct Slot {
    pub state: AtomicU64,
    pub id: [AtomicU64; 2],
    pub amount: AtomicI64,
}

/// One entry of an owner's ring, as mapped.
#[repr(C)]
pub struct RingEntry {
    pub slot: AtomicU64,
    pub accepted_at: AtomicI64,
}

/// One owner's counters, as mapped.
#[repr(C)]
pub struct OwnerBlock {
    /// Entries the owner pushed into its ring.
    pub head: AtomicU32,
    /// Entries the core has taken from it.
    pub tail: AtomicU32,
    pub incarnation: AtomicU32,
    pub duplicates: AtomicU32,
    pub counted: AtomicU32,
}

/// A view of a mapped table's memory. The mapping outlives it.
pub struct Layout {
    base: *mut u8,
    pub slots_log2: u32,
}

// SAFETY: every access through a Layout is to an atomic in a mapping that
// lives as long as the table holding both.
unsafe impl Send for Layout {}
unsafe impl Sync for Layout {}

impl Layout {
    /// # Safety
    /// `base` points to a mapping of at least `file_len(slots_log2)` bytes,
    /// aligned to a page, alive as long as the returned value.
    pub unsafe fn new(base: *mut u8, slots_log2: u32) -> Self {
        Self { base, slots_log2 }
    }

    fn at<T>(&self, offset: usize) -> &T {
        debug_assert!(offset.is_multiple_of(std::mem::align_of::<T>()));
        debug_assert!(offset + std::mem::size_of::<T>() <= file_len(self.slots_log2));
        // SAFETY: within the mapping (above), aligned, and only atomics
        // (or bytes read before any process shares the file) are read.
        unsafe { &*(self.base.add(offset) as *const T) }
    }

    pub fn capacity(&self) -> usize {
        1 << self.slots_log2
    }

    pub fn generation(&self) -> &AtomicU64 {
        self.at(16)
    }

    pub fn trusted(&self) -> &AtomicU64 {
        self.at(24)
    }

    pub fn store_key(&self) -> &AtomicU64 {
        self.at(80)
    }

    pub fn stable(&self) -> &AtomicU64 {
        self.at(88)
    }

    pub fn boot_id(&self) -> [u8; BOOT_ID_LEN] {
        let mut out = [0; BOOT_ID_LEN];
        for (i, b) in out.iter_mut().enumerate() {
            *b = self
                .at::<std::sync::atomic::AtomicU8>(BOOT_ID_AT + i)
                .load(Ordering::Relaxed);
        }
        out
    }

    pub fn set_boot_id(&self, id: &[u8; BOOT_ID_LEN]) {
        for (i, b) in id.iter().enumerate() {
            self.at::<std::sync::atomic::AtomicU8>(BOOT_ID_AT + i)
                .store(*b, Ordering::Relaxed);
        }
    }

    pub fn owner(&self, index: usize) -> &OwnerBlock {
        self.at(OWNERS_AT + index * OWNER_BYTES)
    }

    pub fn ring_entry(&self, owner: usize, position: u32) -> &RingEntry {
        self.at(HEADER + (owner * RING as usize + (position % RING) as usize) * ENTRY_BYTES)
    }

    pub fn slot(&self, index: usize) -> &Slot {
        self.at(slot_offset(index & (self.capacity() - 1)))
    }
}

/// Where slot `index` lies in the file.
pub fn slot_offset(index: usize) -> usize {
    HEADER + RINGS + index * SLOT_BYTES
}

/// The header's bytes: one page.
pub fn header_len() -> usize {
    HEADER
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_keeps_each_field_apart() {
        let w = Word::new(GEN_MASK, Kind::Unsure, 15, INCARNATION_MASK, 0xFF_FFFF);
        assert_eq!(w.0, u64::MAX);
        let w = Word::new(7, Kind::Claimed, 3, 9, 0xAB_CDEF);
        assert_eq!(
            (
                w.generation(),
                w.kind(),
                w.owner(),
                w.incarnation(),
                w.tag()
            ),
            (7, Kind::Claimed, 3, 9, 0xAB_CDEF)
        );
        assert_eq!(w.with_kind(Kind::Written).kind(), Kind::Written);
        assert_eq!(w.with_kind(Kind::Written).tag(), 0xAB_CDEF);
    }

    #[test]
    fn a_slot_is_free_when_empty_or_of_an_earlier_generation_unless_claimed() {
        let of = |generation, kind| Word::new(generation, kind, 1, 1, 5);
        assert!(Word(0).is_free(3));
        assert!(!of(3, Kind::Written).is_free(3));
        assert!(of(2, Kind::Written).is_free(3));
        assert!(of(2, Kind::Unsure).is_free(3));
        assert!(!of(2, Kind::Claimed).is_free(3), "a claim is its owner's");
        assert!(!of(3, Kind::Claimed).is_free(3));
    }
}
