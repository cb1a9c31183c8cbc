//! The effective configuration printed back as a `--config` file, each value
//! with its origin and secrets masked: what `reroute config` shows an
//! operator before a router starts with it.

use super::layers::{Origin, Origins};
use super::serve::{ServeConfig, StoreChoice};

impl ServeConfig {
    /// The effective configuration in the `--config` file's format, each
    /// value followed by its origin, secrets masked (and commented out, so
    /// that the text stays a valid file that does not set them): what
    /// `reroute config` prints.
    pub fn render_masked(&self, origins: &Origins) -> String {
        let mut out = String::new();
        let mut line = |text: String| {
            out.push_str(&text);
            out.push('\n');
        };
        let set = |key: &str, value: String| -> String {
            let name = key.rsplit('.').next().unwrap_or(key);
            format!("{name} = {value}  # {}", origins.of(key))
        };
        let quoted = |s: &str| format!("{s:?}");
        line("# The configuration `reroute serve` would run with, as a --config file.".into());
        line("# After each value, where it came from. Secrets are masked.".into());
        match &origins.file {
            Some((path, origin)) => line(format!(
                "# Configuration file: {} (from {origin}).",
                path.display()
            )),
            None => line("# No configuration file.".into()),
        }

        line("\n[server]".into());
        line(set("server.host", quoted(&self.listen.ip().to_string())));
        line(set("server.port", self.listen.port().to_string()));
        for (key, socket) in [
            ("server.unix_socket", &self.unix_socket),
            ("server.edge_socket", &self.edge_socket),
        ] {
            match socket {
                Some(path) => line(set(key, quoted(&path.display().to_string()))),
                None => line(format!("# {}: none", &key["server.".len()..])),
            }
        }
        line(set("server.workers", self.workers.to_string()));
        match &self.admin_token {
            Some(_) => line(format!(
                "# admin_token = \"********\"  # {}, masked",
                origins.of("server.admin_token")
            )),
            None => line("# admin_token: unset, the admin endpoints are open".into()),
        }
        line(set("server.instance", quoted(&self.instance)));

        line("\n[routing]".into());
        match &self.registry_file {
            Some(path) => {
                line(set(
                    "routing.processors",
                    quoted(&path.display().to_string()),
                ));
                line(
                    "# default_url, fallback_url: unused, the registry file names the processors"
                        .into(),
                );
            }
            None => {
                line("# processors: unset, the Rinha pair".into());
                let url = |id: &str| {
                    self.registry
                        .get(id)
                        .and_then(|p| p.url.as_deref())
                        .map(mask_url_password)
                        .unwrap_or_default()
                };
                line(set("routing.default_url", quoted(&url("default"))));
                line(set("routing.fallback_url", quoted(&url("fallback"))));
            }
        }
        line(set(
            "routing.patience_ms",
            self.policy.patience_ms.to_string(),
        ));
        line(set(
            "routing.processor_timeout_ms",
            self.processor_timeout.as_millis().to_string(),
        ));
        line(set(
            "routing.landing_margin_ms",
            self.landing_margin.as_millis().to_string(),
        ));
        line(set(
            "routing.spill_wait_ms",
            self.policy.spill_wait_ms.to_string(),
        ));
        line(set("routing.max_in_flight", self.lanes.max.to_string()));
        line(set(
            "routing.trip_after",
            self.circuit.trip_after.to_string(),
        ));

        line("\n[storage]".into());
        match &self.store {
            StoreChoice::Embedded(path) => {
                line(set("storage.db", quoted(&path.display().to_string())));
                line("# store: unset, the embedded store at db".into());
                line("# lease_ms: unused by the embedded store".into());
            }
            StoreChoice::Postgres { url, lease } => {
                line("# db: unused, the store is PostgreSQL".into());
                line(set("storage.store", quoted(&mask_url_password(url))));
                line(set("storage.lease_ms", lease.as_millis().to_string()));
            }
        }
        line(set(
            "storage.summary_settle_ms",
            self.summary_settle.as_millis().to_string(),
        ));
        line(set(
            "storage.durability",
            quoted(&self.durability.to_string()),
        ));
        match &self.accept_table {
            Some(path) => line(set(
                "storage.accept_table",
                quoted(&path.display().to_string()),
            )),
            None => line("# accept_table: none".into()),
        }

        line("\n[health]".into());
        line(set("health.probes", self.probes.to_string()));
        line(set(
            "health.health_interval_ms",
            self.health_interval.as_millis().to_string(),
        ));
        let h = &self.health;
        for (key, value) in [
            ("health.health_window_size", h.window_size.to_string()),
            ("health.health_window_age_ms", h.window_age_ms.to_string()),
            (
                "health.health_min_transactions",
                h.min_transactions.to_string(),
            ),
            (
                "health.health_trial_interval_ms",
                h.trial_interval_ms.to_string(),
            ),
            ("health.health_flap_hold_ms", h.flap_hold_ms.to_string()),
        ] {
            let mut text = set(key, value);
            if self.registry_file.is_some() && *origins.of(key) == Origin::Default {
                text.push_str(" or the registry file");
            }
            line(text);
        }

        line("\n[telemetry]".into());
        line(set(
            "telemetry.log_format",
            quoted(self.telemetry.log_format.as_str()),
        ));
        match &self.telemetry.otlp {
            Some(otlp) => {
                line(set(
                    "telemetry.otlp_endpoint",
                    quoted(&mask_url_password(&otlp.endpoint)),
                ));
                line(set(
                    "telemetry.otlp_service_name",
                    quoted(&otlp.service_name),
                ));
            }
            None => {
                line("# otlp_endpoint: unset, no spans are exported".into());
                line("# otlp_service_name: unused without otlp_endpoint".into());
            }
        }

        line("\n[limits]".into());
        match &self.rate_limit {
            Some(limit) => {
                line(set(
                    "limits.rate_limit_per_second",
                    limit.per_second.to_string(),
                ));
                line(set("limits.rate_limit_burst", limit.burst.to_string()));
                line(set(
                    "limits.trust_forwarded_for",
                    limit.trust_forwarded_for.to_string(),
                ));
            }
            None => {
                let mut text = set("limits.rate_limit_per_second", "0".into());
                text.push_str(" (0: no limit)");
                line(text);
                line("# rate_limit_burst, trust_forwarded_for: unused without a limit".into());
            }
        }
        line(format!("# max_body_bytes: {} (fixed)", self.max_body_bytes));
        line(format!(
            "# body_read_timeout: {} s (fixed)",
            self.body_read_timeout.as_secs()
        ));

        line("\n# The health engine (defaults, or the registry file's [health] table):".into());
        for text in format!("{h:#?}").lines() {
            line(format!("#   {text}"));
        }
        line("\n# The registry, cheapest first:".into());
        for p in self.registry.by_fee() {
            let url = p
                .url
                .as_deref()
                .map_or("no url: advisory only".to_owned(), mask_url_password);
            line(format!(
                "#   {} ({:?}) fee {}, {url}, countries {:?}, payment methods {:?}",
                p.id,
                p.name,
                p.fee.as_fraction(),
                p.countries,
                p.payment_methods
            ));
        }
        out
    }
}

/// `http://user:secret@host` -> `http://user:****@host`.
pub(super) fn mask_url_password(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:****{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
