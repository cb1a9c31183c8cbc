//! The registry file (`--processors FILE`): the processors a payment can be
//! routed to (id, name, URL, fee, countries, payment methods) and the
//! optional `[health]` table of the health engine. Without one the registry
//! is the Rinha pair. The format is in `docs/intelligence.md`.

use std::path::Path;

use reroute_core::{FeeRate, HealthConfig, Processor, ProcessorId, Registry};

use super::error::{ConfigError, invalid};
use super::validate::{check_url, is_country, is_method};

/// The registry file as written.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RegistryFile {
    #[serde(default)]
    pub(super) processors: Vec<ProcessorEntry>,
    #[serde(default)]
    pub(super) health: HealthConfig,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProcessorEntry {
    id: String,
    name: Option<String>,
    url: Option<String>,
    fee: FeeText,
    #[serde(default)]
    countries: Vec<String>,
    #[serde(default)]
    payment_methods: Vec<String>,
}

/// A fee as a fraction: `0.029` or `"0.029"`.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
pub(super) enum FeeText {
    Number(f64),
    Text(String),
}

/// The name registry file errors start with.
pub(super) const REGISTRY_KEY: &str = "REROUTE_PROCESSORS";

impl RegistryFile {
    pub(super) fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(REGISTRY_KEY, format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text)
            .map_err(|problem| invalid(REGISTRY_KEY, format!("{}: {problem}", path.display())))
    }

    pub(super) fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.message().to_owned())
    }

    pub(super) fn registry(&self) -> Result<Registry, ConfigError> {
        let fail = |problem: String| invalid(REGISTRY_KEY, problem);
        let mut processors = Vec::with_capacity(self.processors.len());
        for p in &self.processors {
            let at = |field: &str| format!("processor {:?}: {field}", p.id);
            let fee = match &p.fee {
                FeeText::Number(f) => Some(*f),
                FeeText::Text(t) => t.trim().parse::<f64>().ok(),
            }
            .and_then(FeeRate::from_fraction)
            .ok_or_else(|| fail(format!("{} must be a fraction between 0 and 1", at("fee"))))?;
            let url = match &p.url {
                Some(url) => {
                    Some(check_url(url.clone()).map_err(|e| fail(format!("{}: {e}", at("url"))))?)
                }
                None => None,
            };
            if let Some(c) = p.countries.iter().find(|c| !is_country(c)) {
                return Err(fail(format!(
                    "{} {c:?} is not an ISO 3166-1 alpha-2 code",
                    at("countries")
                )));
            }
            if let Some(m) = p.payment_methods.iter().find(|m| !is_method(m)) {
                return Err(fail(format!(
                    "{} {m:?} must be 1-32 letters, digits, '_' or '-'",
                    at("payment_methods")
                )));
            }
            processors.push(Processor {
                id: ProcessorId::new(&p.id),
                name: p.name.clone().unwrap_or_else(|| p.id.clone()),
                url,
                fee,
                countries: p.countries.iter().map(|c| c.to_ascii_uppercase()).collect(),
                payment_methods: p
                    .payment_methods
                    .iter()
                    .map(|m| m.to_ascii_uppercase())
                    .collect(),
            });
        }
        Registry::new(processors).map_err(|e| fail(e.to_string()))
    }
}
