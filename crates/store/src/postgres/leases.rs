//! The lease rules as SQL: an instance's lease (one row, renewed on the
//! database's clock), taking over the pending payments of an instance whose
//! lease ran out or of this instance's previous run, and the leadership of
//! the health probes (docs/postgres.md).

/// An instant `$n` milliseconds from now on the database's clock: leases of
/// all instances are measured on this one clock, so skew between hosts does
/// not matter.
macro_rules! from_now {
    ($n:literal) => {
        concat!(
            "clock_timestamp() + $",
            $n,
            "::int8 * interval '1 millisecond'"
        )
    };
}

/// Pending payments whose holder's lease ran out (or who never had one: a
/// payment left by a build older than the `holders` table), oldest first.
/// The test is on the payment's own `holder`, so a row another instance
/// took over meanwhile fails it when rechecked under its lock (with a join,
/// the recheck would keep the old holder's expired row and take it twice).
pub(super) const RECLAIM: &str = "WITH orphaned AS (
        SELECT p.id FROM payments p
        WHERE p.lease_until IS NOT NULL AND p.holder <> $1
          AND (p.holder IN (SELECT holder FROM holders WHERE lease_until < clock_timestamp())
               OR NOT EXISTS (SELECT 1 FROM holders h WHERE h.holder = p.holder))
        ORDER BY p.lease_until
        LIMIT $2
        FOR UPDATE OF p SKIP LOCKED
    )
    UPDATE payments p SET holder = $1, lease_until = clock_timestamp()
    FROM orphaned WHERE p.id = orphaned.id
    RETURNING p.id, p.amount, p.payment_method, p.country, p.accepted_at, p.processor, p.requested_at";

/// Pending payments leased to an earlier process of this instance: held by
/// `<name>/<run>` with this instance's name and another run ($3 is
/// `<name>/`, compared literally, and the run part has no `/`).
pub(super) const TAKE_OVER_PREDECESSOR: &str = "WITH left_behind AS (
        SELECT id FROM payments
        WHERE lease_until IS NOT NULL AND holder <> $1
          AND left(holder, length($3)) = $3
          AND strpos(substr(holder, length($3) + 1), '/') = 0
        ORDER BY accepted_at
        LIMIT $2
        FOR UPDATE SKIP LOCKED
    )
    UPDATE payments p SET holder = $1
    FROM left_behind WHERE p.id = left_behind.id
    RETURNING p.id, p.amount, p.payment_method, p.country, p.accepted_at, p.processor, p.requested_at";

/// Extends this instance's lease: one row, however many payments it holds.
pub(super) const RENEW: &str = concat!(
    "INSERT INTO holders (holder, lease_until) VALUES ($1, ",
    from_now!(2),
    ")
    ON CONFLICT (holder) DO UPDATE SET lease_until = excluded.lease_until"
);

/// The leader row is taken when free or expired, and kept by its holder; a
/// concurrent taker waits for the row lock, then sees it taken.
pub(super) const LEAD_PROBES: &str = concat!(
    "INSERT INTO leaders (role, holder, until) VALUES ('probes', $1, ",
    from_now!(2),
    ")
    ON CONFLICT (role) DO UPDATE SET holder = excluded.holder, until = excluded.until
    WHERE leaders.holder = excluded.holder OR leaders.until < clock_timestamp()
    RETURNING holder"
);
