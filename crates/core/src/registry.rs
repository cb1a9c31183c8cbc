//! The processor registry: who can execute payments, at what fee.
//!
//! It comes from configuration and never changes while the router runs. Order
//! matters: [`Registry::by_fee`] is the order the routing policy tries.

use std::fmt;
use std::sync::Arc;

/// A processor's identifier as configured (`default`, `fallback`, `stripe_latam`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcessorId(Arc<str>);

impl ProcessorId {
    pub fn new(id: &str) -> Self {
        Self(Arc::from(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProcessorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for ProcessorId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A fee as a fraction of the amount, in parts per million (`0.05` = 50_000).
/// Integer so that comparing and summing fees is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FeeRate(u32);

impl FeeRate {
    pub const fn from_ppm(ppm: u32) -> Self {
        Self(ppm)
    }

    pub const fn ppm(self) -> u32 {
        self.0
    }

    /// From a configured fraction (`0.05`); `None` outside `[0, 1]`.
    pub fn from_fraction(fraction: f64) -> Option<Self> {
        if !(0.0..=1.0).contains(&fraction) {
            return None;
        }
        Some(Self((fraction * 1_000_000.0).round() as u32))
    }

    pub fn as_fraction(self) -> f64 {
        f64::from(self.0) / 1_000_000.0
    }
}

/// One processor of the registry.
#[derive(Debug, Clone)]
pub struct Processor {
    pub id: ProcessorId,
    pub name: String,
    /// Where payments are executed; `None` for an advisory-only processor.
    pub url: Option<String>,
    pub fee: FeeRate,
    pub countries: Vec<String>,
    pub payment_methods: Vec<String>,
}

impl Processor {
    /// Whether this processor can take a payment with these (optional)
    /// attributes; an empty list in the registry means "any".
    pub fn supports(&self, method: Option<&str>, country: Option<&str>) -> bool {
        let fits = |list: &[String], value: Option<&str>| match value {
            None => true,
            Some(v) => list.is_empty() || list.iter().any(|x| x.eq_ignore_ascii_case(v)),
        };
        fits(&self.payment_methods, method) && fits(&self.countries, country)
    }
}

/// Why a registry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("the registry declares no processor")]
    Empty,
    #[error("processor id {0:?} is declared twice")]
    DuplicateId(String),
    #[error("processor id {0:?} is not a valid id (use letters, digits, '_' and '-')")]
    InvalidId(String),
}

/// The processors, sorted by fee (cheapest first), ties kept in declared order.
#[derive(Debug, Clone)]
pub struct Registry {
    processors: Vec<Processor>,
}

impl Registry {
    pub fn new(mut processors: Vec<Processor>) -> Result<Self, RegistryError> {
        if processors.is_empty() {
            return Err(RegistryError::Empty);
        }
        for (i, p) in processors.iter().enumerate() {
            let id = p.id.as_str();
            let valid = !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid {
                return Err(RegistryError::InvalidId(id.to_owned()));
            }
            if processors[..i].iter().any(|q| q.id == p.id) {
                return Err(RegistryError::DuplicateId(id.to_owned()));
            }
        }
        processors.sort_by_key(|p| p.fee);
        Ok(Self { processors })
    }

    /// The Rinha de Backend pair: `default` (5%) and `fallback` (15%).
    pub fn rinha(default_url: &str, fallback_url: &str) -> Self {
        let p = |id: &str, name: &str, url: &str, ppm| Processor {
            id: ProcessorId::new(id),
            name: name.to_owned(),
            url: Some(url.to_owned()),
            fee: FeeRate::from_ppm(ppm),
            countries: Vec::new(),
            payment_methods: Vec::new(),
        };
        Self::new(vec![
            p("default", "Default processor", default_url, 50_000),
            p("fallback", "Fallback processor", fallback_url, 150_000),
        ])
        .expect("the built-in registry is valid")
    }

    /// Cheapest first.
    pub fn by_fee(&self) -> &[Processor] {
        &self.processors
    }

    pub fn get(&self, id: &str) -> Option<&Processor> {
        self.processors.iter().find(|p| p.id.as_str() == id)
    }

    /// Position of a processor in [`Registry::by_fee`]; the index other
    /// per-processor tables are keyed by.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.processors.iter().position(|p| p.id.as_str() == id)
    }

    pub fn len(&self) -> usize {
        self.processors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.processors.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn processor(id: &str, ppm: u32) -> Processor {
        Processor {
            id: ProcessorId::new(id),
            name: id.to_owned(),
            url: None,
            fee: FeeRate::from_ppm(ppm),
            countries: vec!["BR".into()],
            payment_methods: vec!["pix".into(), "card".into()],
        }
    }

    #[test]
    fn processors_are_ordered_cheapest_first() {
        let r = Registry::new(vec![
            processor("b", 30),
            processor("a", 10),
            processor("c", 30),
        ])
        .unwrap();
        let ids: Vec<_> = r.by_fee().iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(r.index_of("c"), Some(2));
    }

    #[test]
    fn invalid_registries_are_refused() {
        assert_eq!(Registry::new(vec![]).unwrap_err(), RegistryError::Empty);
        assert_eq!(
            Registry::new(vec![processor("a", 1), processor("a", 2)]).unwrap_err(),
            RegistryError::DuplicateId("a".into())
        );
        assert_eq!(
            Registry::new(vec![processor("a b", 1)]).unwrap_err(),
            RegistryError::InvalidId("a b".into())
        );
    }

    #[test]
    fn support_matches_method_and_country_case_insensitively() {
        let p = processor("a", 1);
        assert!(p.supports(Some("PIX"), Some("br")));
        assert!(p.supports(None, None));
        assert!(!p.supports(Some("boleto"), Some("BR")));
        assert!(!p.supports(Some("pix"), Some("MX")));
    }

    #[test]
    fn fee_fractions_convert_to_ppm() {
        assert_eq!(
            FeeRate::from_fraction(0.05),
            Some(FeeRate::from_ppm(50_000))
        );
        assert_eq!(
            FeeRate::from_fraction(0.15),
            Some(FeeRate::from_ppm(150_000))
        );
        assert_eq!(FeeRate::from_fraction(1.5), None);
        assert_eq!(FeeRate::from_fraction(-0.1), None);
    }
}
