//! A load balancer in front of the routers under test, as in the Rinha
//! topology: nginx (Debian's `nginx-light`; `scripts/need-nginx.sh` installs
//! it) on a free port of 127.0.0.1, round-robin over the instances, with
//! the settings of `deploy/nginx.conf` (keep-alive both sides, no
//! buffering, 1 s connect and 10 s read timeouts, and `max_fails=0`: an
//! instance that refuses a connection is skipped for that request only,
//! never taken out for 10 s — a restarted router answers within
//! milliseconds, and with two instances two kills 10 s apart would
//! otherwise leave nginx with no live upstream).
//!
//! nginx runs in the foreground as a child of the bench, its files in the
//! bench's work directory; it is stopped (`nginx -s stop`) when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::fleet::free_port;
use reroute_bench::http::Endpoint;

/// What spreads the load over the instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BalancerKind {
    /// The bench itself, round-robin.
    None,
    /// nginx, as in the Rinha topology.
    Nginx,
}

/// Where nginx is looked for, in order, after `$REROUTE_NGINX`.
const CANDIDATES: [&str; 3] = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"];

/// A running nginx.
pub struct Nginx {
    bin: PathBuf,
    dir: PathBuf,
    child: Option<Child>,
    pub endpoint: Arc<Endpoint>,
}

impl Nginx {
    /// Starts nginx on a free port in front of `upstreams` (ports of
    /// 127.0.0.1), with its configuration, pid and error log in `dir`, and
    /// waits until it accepts connections.
    pub async fn start(upstreams: &[u16], dir: &Path) -> anyhow::Result<Self> {
        let bin = find()?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = dir
            .canonicalize()
            .with_context(|| format!("resolving {}", dir.display()))?;
        let port = free_port()?;
        let config = dir.join("nginx.conf");
        std::fs::write(&config, configuration(&dir, port, upstreams))
            .with_context(|| format!("writing {}", config.display()))?;
        let log = std::fs::File::create(dir.join("nginx.out"))?;
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&config)
            .arg("-p")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut nginx = Self {
            bin,
            dir,
            child: Some(child),
            endpoint: Arc::new(format!("http://127.0.0.1:{port}").parse()?),
        };
        nginx.wait_listening(port).await?;
        Ok(nginx)
    }

    async fn wait_listening(&mut self, port: u16) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                let out = std::fs::read_to_string(self.dir.join("nginx.out")).unwrap_or_default();
                bail!("nginx exited at start ({status}): {}", out.trim());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("nginx did not listen on port {port} within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let stopped = Command::new(&self.bin)
            .arg("-c")
            .arg(self.dir.join("nginx.conf"))
            .arg("-p")
            .arg(&self.dir)
            .args(["-s", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !stopped {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

fn find() -> anyhow::Result<PathBuf> {
    if let Some(given) = std::env::var_os("REROUTE_NGINX") {
        return Ok(PathBuf::from(given));
    }
    CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .context("nginx not found: install it with `bash scripts/need-nginx.sh` (Debian's nginx-light), or set REROUTE_NGINX")
}

/// The configuration: `deploy/nginx.conf`'s proxy settings, in the
/// foreground, every file under `dir`.
fn configuration(dir: &Path, port: u16, upstreams: &[u16]) -> String {
    let dir = dir.display();
    let servers: String = upstreams
        .iter()
        .map(|p| format!("        server 127.0.0.1:{p} max_fails=0;\n"))
        .collect();
    format!(
        "daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    upstream reroute {{
{servers}        keepalive 256;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://reroute;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_buffering off;
            proxy_connect_timeout 1s;
            proxy_read_timeout 10s;
        }}
    }}
}}
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_lists_every_instance_and_keeps_files_in_the_work_dir() {
        let text = configuration(Path::new("/w"), 9999, &[9101, 9102]);
        assert!(text.contains(
            "server 127.0.0.1:9101 max_fails=0;\n        server 127.0.0.1:9102 max_fails=0;"
        ));
        assert!(text.contains("listen 127.0.0.1:9999;"));
        assert!(text.contains("pid /w/nginx.pid;"));
        assert!(text.contains("daemon off;"));
        // The same proxy settings as deploy/nginx.conf.
        let deployed = include_str!("../../../deploy/nginx.conf");
        for setting in [
            "proxy_http_version 1.1;",
            "proxy_set_header Connection \"\";",
            "proxy_buffering off;",
            "proxy_connect_timeout 1s;",
            "proxy_read_timeout 10s;",
            "keepalive 256;",
        ] {
            assert!(text.contains(setting), "{setting}");
            assert!(deployed.contains(setting), "deploy/nginx.conf: {setting}");
        }
    }
}
