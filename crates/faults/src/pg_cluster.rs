//! A private PostgreSQL cluster: the crash bench restarts PostgreSQL under
//! the routers, and restarting the machine's shared server would pull it
//! from under everyone else. So the bench (and the tests) make their own:
//! `initdb` into a temporary directory, `pg_ctl start` on a free port of
//! 127.0.0.1 with trust authentication, restarts on demand, and everything
//! stopped and removed when the [`PrivateCluster`] is dropped.
//!
//! PostgreSQL refuses to run as root. Run as root, the binaries are started
//! with `runuser -u postgres --` in a directory handed over to that user;
//! run as anyone else, they run as that user.
//!
//! Every method blocks (they wait for `initdb` and `pg_ctl`); async callers
//! use `spawn_blocking`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::fleet::free_port;

/// How `pg_ctl` stops the server, as its `-m` option says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StopMode {
    /// Disconnects clients, then a clean shutdown with a checkpoint.
    Fast,
    /// Aborts every process at once: a crash of PostgreSQL; the next start
    /// runs crash recovery from the WAL.
    Immediate,
}

impl StopMode {
    fn as_arg(self) -> &'static str {
        match self {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

/// A running PostgreSQL of our own, removed on drop.
pub struct PrivateCluster {
    /// Holds `data/`, the log and the socket; owned by the user that runs
    /// PostgreSQL.
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl PrivateCluster {
    /// Creates and starts a cluster on a free port. `bin` is the directory
    /// of `initdb` and `pg_ctl`; without it, `$REROUTE_PG_BIN`, then `PATH`,
    /// then the newest `/usr/lib/postgresql/*/bin`.
    pub fn start(bin: Option<&Path>) -> anyhow::Result<Self> {
        let bin = match bin {
            Some(bin) => bin.to_path_buf(),
            None => find_bin().context(
                "no PostgreSQL binaries found (initdb, pg_ctl): set REROUTE_PG_BIN or --pg-bin",
            )?,
        };
        let as_postgres = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("reroute-pg-")
            .tempdir()
            .context("creating the cluster's directory")?;
        if as_postgres {
            run(Command::new("chown").arg("postgres:").arg(dir.path()))
                .context("handing the cluster's directory to the postgres user")?;
        }
        let port = free_port()?;
        let cluster = Self {
            dir,
            bin,
            port,
            as_postgres,
        };
        run(cluster
            .command("initdb")
            .arg("-D")
            .arg(cluster.data())
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]))
        .context("initdb")?;
        let settings = format!(
            "\n# reroute private cluster\nport = {port}\nlisten_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\nmax_connections = 200\nfsync = on\n",
            cluster.dir.path().display()
        );
        append(&cluster.data().join("postgresql.conf"), &settings)?;
        run(cluster
            .command("pg_ctl")
            .arg("-D")
            .arg(cluster.data())
            .arg("-l")
            .arg(cluster.log())
            .args(["-w", "-t", "60", "start"]))
        .with_context(|| format!("pg_ctl start (log: {})", cluster.log().display()))?;
        Ok(cluster)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The server's log file.
    pub fn log(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// Stops the server the `mode` way and starts it again, waiting until it
    /// accepts connections (crash recovery included). Returns how long that
    /// took: the outage the routers saw.
    pub fn restart(&self, mode: StopMode) -> anyhow::Result<Duration> {
        let began = Instant::now();
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.log())
            .args(["-m", mode.as_arg(), "-w", "-t", "60", "restart"]))
        .with_context(|| format!("pg_ctl restart (log: {})", self.log().display()))?;
        Ok(began.elapsed())
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A command for one of the binaries, as the user that owns the cluster.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        // Best effort: the directory goes with the TempDir either way.
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "-t", "30", "stop"])
            .output();
    }
}

fn run(command: &mut Command) -> anyhow::Result<Output> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout).trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output)
}

fn append(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Whether this process runs as root (effective uid 0), from
/// `/proc/self/status`.
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

fn find_bin() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("REROUTE_PG_BIN").map(PathBuf::from) {
        return has_tools(&dir).then_some(dir);
    }
    if let Some(dir) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| has_tools(dir))
    {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            has_tools(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// A database of its own on a server the bench does not own (the machine's
/// shared PostgreSQL): created fresh, dropped at the end. The server itself
/// is never restarted.
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    dropped: bool,
}

impl ScratchDatabase {
    /// Creates `<prefix>_<random>` on the server `admin_url` points at.
    pub async fn create(admin_url: &str, prefix: &str) -> anyhow::Result<Self> {
        let random = uuid_hex();
        let name = format!("{prefix}_{}", &random[..12]);
        let client = connect(admin_url).await?;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| format!("creating database {name}"))?;
        Ok(Self {
            admin_url: admin_url.to_owned(),
            name,
            dropped: false,
        })
    }

    /// The URL of the scratch database: `admin_url` with its name.
    pub fn url(&self) -> String {
        with_database(&self.admin_url, &self.name)
    }

    /// Drops the database (connections still open are closed).
    pub async fn remove(mut self) -> anyhow::Result<()> {
        self.dropped = true;
        drop_database(&self.admin_url, &self.name).await
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // No runtime may be at hand (or it may be shutting down): drop the
        // database from a thread with a runtime of its own.
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(drop_database(&url, &name)).ok()
        })
        .join();
    }
}

async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    tokio::spawn(connection);
    Ok(client)
}

async fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    connect(admin_url)
        .await?
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .with_context(|| format!("dropping database {name}"))
}

/// `url` with its database name replaced (any query string kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{root}/{name}?{query}"),
        None => format!("{root}/{name}"),
    }
}

fn uuid_hex() -> String {
    reroute_core::CorrelationId::new_random()
        .to_string()
        .replace('-', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scratch_url_swaps_only_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@db:5432/test?sslmode=disable", "x"),
            "postgres://u:p@db:5432/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
    }
}
