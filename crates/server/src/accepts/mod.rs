//! The accept table (`--accept-table`): a file the core and its edges all
//! map, in which an edge accepts a payment — and answers 202, 200 or 409 —
//! without a round trip to the core. At either durability level.
//!
//! ## What a 2xx survives
//! A store into a shared file mapping is in the operating system's page
//! cache the moment it is made: it survives kill -9 of any process, not a
//! kernel crash or power loss — exactly `os`'s promise (docs/ARCHITECTURE.md,
//! "Durability levels"). At `stable` ([`AcceptTable::is_stable`], set by
//! the core) a process answers 2xx from a slot only once the slot's page
//! is on stable storage (`msync`, [`AcceptTable::sync_slot`]), and a purge
//! only once the new generation is: then a 2xx survives a kernel crash or
//! a power loss too. The table is the only copy of an accepted payment
//! until the core has stored it; the core stores it within milliseconds,
//! and at start-up before it serves — after a kernel crash (another boot
//! id) every written slot, since the rings' pages may have missed the disk.
//!
//! ## The rules
//! - **Slots.** An open-addressing table of 32-byte slots; an id lives in
//!   one of the [`table::WINDOW`] slots from its home. A slot's state word
//!   says its kind — empty, claimed (by an owner, [`owners`]), written,
//!   unsure — its generation, and a tag of the id, so that a probe passes a
//!   slot of another id without reading it.
//! - **Claim, write, publish.** To accept an id nobody has, a process
//!   claims the first free slot of its window (compare-and-swap of the
//!   state word), writes the fields, and publishes (kind written, release
//!   ordering). Between the claim and the publish there is no await and
//!   no answer: a claim whose owner died was never answered.
//! - **Deciding.** A written slot with the id answers for it: the same
//!   amount is a duplicate (200), another a conflict (409). A claimed or
//!   unsure slot with the id's tag is waited for, or left to the core: only
//!   the core takes over a dead owner's claim or an unsure slot, asking its
//!   store (which has the payment, or not) before it publishes. A window
//!   without the id and without a free slot: the store decides alone —
//!   the window never frees up within a generation, so no process will
//!   claim that id here later.
//! - **Handing over.** Before it publishes, an edge pushes the slot's index
//!   (and the time of acceptance) into its ring. The core looks at the
//!   rings every few milliseconds: it stores their written slots in order
//!   (idempotently: the store knows an id it has), queues the new ones and
//!   moves each ring's tail; an entry whose owner is still writing stops
//!   its ring until the next look, one whose owner died is skipped (never
//!   answered). Nothing crosses the edge's socket for it. The core
//!   accepts its own payments (frames, `POST /payments` on its sockets) by
//!   the same claim, store, publish — so a duplicate is caught whichever
//!   door each copy came by.
//! - **Purge.** Bumps the generation: every slot not claimed becomes free.
//!   An accept racing a purge may be answered and purged with the rest, or
//!   be stored after it, as an accept racing a purge of the store alone.
//! - **Trust.** Edges decide only while the table holds every id the store
//!   has ([`AcceptTable::trusted`]): a new table beside a store with
//!   payments, or a table that outlived a kernel crash (another boot id) —
//!   its pages may have missed the disk while the store's did not — or a
//!   table last filled for another store file, is refilled from the store
//!   by the core before edges may decide.

pub mod owners;
pub mod table;

pub use table::store_key;

use std::fs::OpenOptions;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use reroute_core::{CorrelationId, Money, Timestamp};
use reroute_store::NewPayment;

use owners::{Owner, OwnerError, Owners};
use table::{Kind, Layout, MAGIC, RING, WINDOW, Word, file_len, locate};

/// The slots of a table this build creates: 2^17 (131,072; 4 MiB): room
/// for the ~90,000 payments of a Rinha final between two purges. Past about
/// that many ids the table fills, and more and more new ids are left to
/// the store (the core's round trip, as without a table).
pub const SLOTS_LOG2: u32 = 17;

/// A mapped accept table and this process's place among its owners.
pub struct AcceptTable {
    path: PathBuf,
    layout: Layout,
    owners: Owners,
    me: Owner,
    pushing: std::sync::Mutex<()>,
    /// Whether the file is on a memory filesystem ([`table::on_memory`]).
    in_memory: bool,
    /// The mapped file's device and inode.
    identity: (u64, u64),
    map: memmap2::MmapMut,
    /// The core's lock on the file lives as long as the table.
    _file: std::fs::File,
}

/// Why a table could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("cannot open the accept table {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path} is not an accept table of this release (remove it while nothing runs, or choose another path)"
    )]
    Foreign { path: String },
    #[error("another core keeps the accept table {path}: each core needs its own")]
    InUse { path: String },
    #[error(
        "{path} is on a memory filesystem, where msync puts nothing on stable storage: at --durability stable the accept table must be on a disk (or use --durability os)"
    )]
    Volatile { path: String },
    #[error(transparent)]
    Owner(#[from] OwnerError),
}

/// What the table says about an id.
#[derive(Debug, PartialEq, Eq)]
pub enum Probe {
    /// Accepted already, with this amount.
    Known(Money),
    /// Nobody has it: this slot is claimed for it. Write, then publish.
    Claimed(Claim),
    /// A slot with its tag is claimed or unsure: wait, or (the core) take it
    /// over if its owner is dead.
    Busy(usize, Word),
    /// No room in its window: the store decides alone.
    Full,
}

/// A slot claimed by this process.
#[derive(Debug, PartialEq, Eq)]
pub struct Claim {
    slot: usize,
    word: Word,
}

impl Claim {
    pub fn slot(&self) -> usize {
        self.slot
    }
}

/// A written slot's payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: CorrelationId,
    pub amount: Money,
}

impl AcceptTable {
    /// Opens the table at `path`, creating it with [`SLOTS_LOG2`] slots if
    /// `create` (the core: it also locks the file, one core per table) and
    /// it does not exist, and takes an owner index. Also says whether it
    /// was created.
    pub fn open(path: &Path, create: bool) -> Result<(Self, bool), TableError> {
        Self::open_sized(path, create, SLOTS_LOG2)
    }

    fn open_sized(path: &Path, create: bool, slots_log2: u32) -> Result<(Self, bool), TableError> {
        let io = |source| TableError::Io {
            path: path.display().to_string(),
            source,
        };
        let foreign = || TableError::Foreign {
            path: path.display().to_string(),
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        if create {
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(TableError::InUse {
                        path: path.display().to_string(),
                    });
                }
                Err(std::fs::TryLockError::Error(source)) => return Err(io(source)),
            }
        }
        let meta = file.metadata().map_err(io)?;
        let in_memory = table::on_memory(&file).map_err(io)?;
        let identity = (meta.dev(), meta.ino());
        let size = meta.len();
        let mut head = [0u8; 12];
        let read = std::os::unix::fs::FileExt::read_exact_at(&file, &mut head, 0);
        // New, or begun by a core killed before it wrote the magic (no
        // edge maps such a file): made (again) by the core.
        let created = create && head[..8] == [0; 8];
        let slots_log2 = if created {
            table::allocate(&file, file_len(slots_log2)).map_err(io)?;
            slots_log2
        } else {
            read.map_err(|_| foreign())?;
            let log2 = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
            if head[..8] != MAGIC || !(4..=28).contains(&log2) || size != file_len(log2) as u64 {
                return Err(foreign());
            }
            log2
        };
        let len = file_len(slots_log2);
        // SAFETY: the file is ours and every process maps it the same way;
        // it is only ever read and written through atomics.
        let mut map = unsafe { memmap2::MmapOptions::new().len(len).map_mut(&file) }.map_err(io)?;
        if created {
            map[8..12].copy_from_slice(&slots_log2.to_le_bytes());
            // The magic last: a file cut short before it is not a table.
            map[..8].copy_from_slice(&MAGIC);
        }
        // SAFETY: the mapping is `len` bytes, page-aligned, and lives in
        // `map` beside the layout.
        let layout = unsafe { Layout::new(map.as_mut_ptr(), slots_log2) };
        let owners = Owners::new(path);
        let me = owners.take(|index| {
            layout
                .owner(index)
                .incarnation
                .fetch_add(1, Ordering::AcqRel)
                .wrapping_add(1)
        })?;
        Ok((
            Self {
                // What the core names to its edges, whatever their directory.
                path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
                layout,
                owners,
                me,
                pushing: std::sync::Mutex::new(()),
                in_memory,
                identity,
                map,
                _file: file,
            },
            created,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file is on a memory filesystem (tmpfs, ramfs): see
    /// [`table::on_memory`].
    pub fn in_memory(&self) -> bool {
        self.in_memory
    }

    /// Whether the file at this table's path is still the one mapped (a
    /// core may have made a new one since): an edge checks it whenever it
    /// connects to a core again.
    pub fn is_current_file(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.identity)
    }

    /// Whether the table holds every id the store has: only then may an
    /// edge decide on it.
    pub fn trusted(&self) -> bool {
        self.layout.trusted().load(Ordering::Acquire) == 1
    }

    pub fn set_trusted(&self, trusted: bool) {
        self.layout
            .trusted()
            .store(u64::from(trusted), Ordering::Release);
    }

    /// What the table was last filled for: this boot and this store file.
    pub fn filled_for(&self) -> ([u8; table::BOOT_ID_LEN], u64) {
        (
            self.layout.boot_id(),
            self.layout.store_key().load(Ordering::Acquire),
        )
    }

    pub fn set_filled_for(&self, boot: &[u8; table::BOOT_ID_LEN], store: u64) {
        self.layout.set_boot_id(boot);
        self.layout.store_key().store(store, Ordering::Release);
    }

    fn generation(&self) -> u64 {
        self.layout.generation().load(Ordering::Acquire)
    }

    /// Forgets every id: each slot not claimed is free again. At `stable`
    /// the new generation is on stable storage when this returns: slots
    /// of the old one must not count again after a kernel crash.
    pub fn purge(&self) -> std::io::Result<()> {
        self.layout.generation().fetch_add(1, Ordering::AcqRel);
        if self.is_stable() {
            self.map.flush_range(0, table::header_len())?;
        }
        Ok(())
    }

    /// Whether a 2xx the table decides waits for its slot's page on stable
    /// storage: the core's `--durability stable`, told to every process.
    pub fn is_stable(&self) -> bool {
        self.layout.stable().load(Ordering::Acquire) == 1
    }

    /// Says every process whether a 2xx waits for its slot's page on
    /// stable storage. A table on a memory filesystem cannot keep that
    /// promise (its `msync` is a no-op), so it refuses `stable`.
    pub fn set_stable(&self, stable: bool) -> Result<(), TableError> {
        if stable && self.in_memory {
            return Err(TableError::Volatile {
                path: self.path.display().to_string(),
            });
        }
        self.layout
            .stable()
            .store(u64::from(stable), Ordering::Release);
        self.map
            .flush_range(0, table::header_len())
            .map_err(|source| TableError::Io {
                path: self.path.display().to_string(),
                source,
            })
    }

    /// Puts the page that holds slot `index` on stable storage (`msync`),
    /// whoever wrote it: at `stable`, before a 2xx that slot decides.
    pub fn sync_slot(&self, index: usize) -> std::io::Result<()> {
        let index = index & (self.layout.capacity() - 1);
        self.map.flush_range(
            table::slot_offset(index),
            std::mem::size_of::<table::Slot>(),
        )
    }

    /// [`AcceptTable::sync_slot`] for the written slot of `id`, if any.
    pub fn sync_id(&self, id: &CorrelationId) -> std::io::Result<()> {
        let (home, _) = locate(id, self.layout.capacity() - 1);
        for i in 0..WINDOW {
            let index = (home + i) & (self.layout.capacity() - 1);
            if self.read(index).is_some_and(|r| r.id == *id) {
                return self.sync_slot(index);
            }
        }
        Ok(())
    }

    /// Every written slot of this generation: after a kernel crash, what
    /// the rings may have lost.
    pub fn written(&self) -> Vec<Record> {
        (0..self.layout.capacity())
            .filter_map(|index| self.read(index))
            .collect()
    }

    /// Looks the id up; if nobody has it, claims a slot for it.
    pub fn probe(&self, id: &CorrelationId) -> Probe {
        let generation = self.generation();
        let current = generation & table::GEN_MASK;
        let (home, tag) = locate(id, self.layout.capacity() - 1);
        let mut i = 0;
        while i < WINDOW {
            let index = (home + i) & (self.layout.capacity() - 1);
            let slot = self.layout.slot(index);
            let word = Word(slot.state.load(Ordering::Acquire));
            if word.is_free(generation) {
                let mine = Word::new(
                    generation,
                    Kind::Claimed,
                    self.me.index,
                    self.me.incarnation,
                    tag,
                );
                if slot
                    .state
                    .compare_exchange(word.0, mine.0, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return Probe::Claimed(Claim {
                        slot: index,
                        word: mine,
                    });
                }
                // Someone took it first: look at it again.
                continue;
            }
            if word.generation() == current && word.tag() == tag {
                match word.kind() {
                    // Its id is ours, or not written yet by a live owner
                    // (it may be ours): busy. A dead owner's or an unsure
                    // claim of another id is passed like a written one.
                    Kind::Claimed | Kind::Unsure
                        if self.holds(index, id)
                            || (word.kind() == Kind::Claimed && self.alive(word)) =>
                    {
                        return Probe::Busy(index, word);
                    }
                    Kind::Claimed | Kind::Unsure => {}
                    Kind::Written => {
                        if let Some(record) = self.read(index)
                            && record.id == *id
                        {
                            return Probe::Known(record.amount);
                        }
                    }
                    Kind::Empty => {}
                }
            }
            i += 1;
        }
        Probe::Full
    }

    /// Writes the payment into a slot claimed for it.
    pub fn write(&self, claim: &Claim, payment: &NewPayment) {
        let slot = self.layout.slot(claim.slot);
        let bytes = payment.id.as_bytes();
        let [hi, lo] = [&bytes[..8], &bytes[8..]]
            .map(|half| u64::from_le_bytes(half.try_into().unwrap_or_default()));
        slot.id[0].store(hi, Ordering::Relaxed);
        slot.id[1].store(lo, Ordering::Relaxed);
        slot.amount.store(payment.amount.minor(), Ordering::Relaxed);
    }

    /// Makes a written slot's payment accepted, for every process.
    pub fn publish(&self, claim: Claim) {
        self.layout
            .slot(claim.slot)
            .state
            .store(claim.word.with_kind(Kind::Written).0, Ordering::Release);
    }

    /// Leaves the slot to the store's word: whether its payment got in is
    /// not known.
    pub fn abandon(&self, claim: Claim) {
        self.layout
            .slot(claim.slot)
            .state
            .store(claim.word.with_kind(Kind::Unsure).0, Ordering::Release);
    }

    /// The payment of a written slot of this generation, read whole (a
    /// slot reused meanwhile reads as `None`).
    pub fn read(&self, index: usize) -> Option<Record> {
        let slot = self.layout.slot(index);
        let word = slot.state.load(Ordering::Acquire);
        if Word(word).kind() != Kind::Written || !self.is_current(Word(word)) {
            return None;
        }
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&slot.id[0].load(Ordering::Relaxed).to_le_bytes());
        bytes[8..].copy_from_slice(&slot.id[1].load(Ordering::Relaxed).to_le_bytes());
        let amount = slot.amount.load(Ordering::Relaxed);
        // Unchanged since the fields were read: they are that word's.
        std::sync::atomic::fence(Ordering::Acquire);
        (slot.state.load(Ordering::Relaxed) == word).then(|| Record {
            id: CorrelationId::from_bytes(bytes),
            amount: Money::from_minor(amount),
        })
    }

    /// Whether the owner of a claim lives (the same process still holds
    /// its index).
    pub fn alive(&self, word: Word) -> bool {
        let index = word.owner() as usize;
        let incarnation = self.layout.owner(index).incarnation.load(Ordering::Acquire);
        incarnation & owners::INCARNATION_MASK == word.incarnation() && self.owners.held(index)
    }

    /// Takes over, for `id`, a busy slot that holds `id` and whose owner
    /// died or that is unsure: the caller then asks the store, writes and
    /// publishes. `None` if the slot changed, holds another id (whose own
    /// request will take it over) or its owner lives. Every claimant writes
    /// the id before it asks the store or pushes the slot, so a slot whose
    /// owner died before it wrote the whole id was neither: it is left.
    pub fn take_over(&self, index: usize, word: Word, id: &CorrelationId) -> Option<Claim> {
        if word.kind() == Kind::Claimed && self.alive(word) {
            return None;
        }
        if !self.holds(index, id) {
            return None;
        }
        let mine = Word::new(
            word.generation(),
            Kind::Claimed,
            self.me.index,
            self.me.incarnation,
            word.tag(),
        );
        self.layout
            .slot(index)
            .state
            .compare_exchange(word.0, mine.0, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| Claim {
                slot: index,
                word: mine,
            })
    }

    /// Whether a slot's id fields are `id` (as written so far).
    fn holds(&self, index: usize, id: &CorrelationId) -> bool {
        let slot = self.layout.slot(index);
        let bytes = id.as_bytes();
        slot.id[0].load(Ordering::Relaxed).to_le_bytes() == bytes[..8]
            && slot.id[1].load(Ordering::Relaxed).to_le_bytes() == bytes[8..]
    }

    /// Room in this process's ring for one more entry.
    pub fn ring_has_room(&self) -> bool {
        let block = self.layout.owner(self.me.index as usize);
        Self::room(block, block.head.load(Ordering::Relaxed))
    }

    fn room(block: &table::OwnerBlock, head: u32) -> bool {
        head.wrapping_sub(block.tail.load(Ordering::Acquire)) < RING
    }

    /// Tells the core, through this process's ring, that the claimed slot
    /// will hold a payment, accepted at `accepted_at`, to store. Before
    /// [`AcceptTable::publish`]. `false` if the ring is full: abandon the
    /// claim then, and let the core accept the payment.
    pub fn push(&self, claim: &Claim, accepted_at: Timestamp) -> bool {
        // One producer per ring: the entry is in place before the head
        // moves past it.
        let _one = self.pushing.lock().unwrap_or_else(|p| p.into_inner());
        let index = self.me.index as usize;
        let block = self.layout.owner(index);
        let head = block.head.load(Ordering::Relaxed);
        if !Self::room(block, head) {
            return false;
        }
        let entry = self.layout.ring_entry(index, head);
        entry.slot.store(claim.slot as u64, Ordering::Relaxed);
        entry
            .accepted_at
            .store(accepted_at.millis(), Ordering::Relaxed);
        block.head.store(head.wrapping_add(1), Ordering::Release);
        true
    }

    /// One more duplicate answered from the table, for the core to count.
    pub fn count_duplicate(&self) {
        self.layout
            .owner(self.me.index as usize)
            .duplicates
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The duplicates an owner answered that the core has not counted yet;
    /// they count as counted from now.
    pub fn take_duplicates(&self, owner: usize) -> u32 {
        let block = self.layout.owner(owner);
        let answered = block.duplicates.load(Ordering::Relaxed);
        let counted = block.counted.swap(answered, Ordering::Relaxed);
        answered.wrapping_sub(counted)
    }

    /// The core's view of one owner's ring: its tail and head.
    pub fn ring(&self, owner: usize) -> (u32, u32) {
        let block = self.layout.owner(owner);
        (
            block.tail.load(Ordering::Acquire),
            block.head.load(Ordering::Acquire),
        )
    }

    /// The slot a ring entry names, and when its payment was accepted.
    pub fn ring_entry(&self, owner: usize, position: u32) -> (usize, Timestamp) {
        let entry = self.layout.ring_entry(owner, position);
        (
            entry.slot.load(Ordering::Relaxed) as usize,
            Timestamp::from_millis(entry.accepted_at.load(Ordering::Relaxed)),
        )
    }

    /// The core has taken a ring's entries up to `tail`.
    pub fn set_tail(&self, owner: usize, tail: u32) {
        self.layout.owner(owner).tail.store(tail, Ordering::Release);
    }

    /// A slot's state word now.
    pub fn word(&self, index: usize) -> Word {
        Word(self.layout.slot(index).state.load(Ordering::Acquire))
    }

    /// Whether a word is a claim of the current generation.
    pub fn is_current(&self, word: Word) -> bool {
        word.generation() == self.generation() & table::GEN_MASK
    }

    /// This process's owner index.
    pub fn owner_index(&self) -> usize {
        self.me.index as usize
    }
}

#[cfg(test)]
mod tests;
