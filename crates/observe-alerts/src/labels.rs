//! Label sets and their fingerprints, computed as Prometheus and
//! Alertmanager compute them, so an alert has the same fingerprint here, in
//! a webhook payload and in Alertmanager's API.

use std::collections::BTreeMap;

/// A set of labels (or annotations), sorted by name.
pub type Labels = BTreeMap<String, String>;

const FNV_OFFSET: u64 = 14_695_981_039_346_656_037;
const FNV_PRIME: u64 = 1_099_511_628_211;
/// Prometheus's separator between names and values in a signature.
const SEPARATOR: u8 = 0xff;

fn add(mut hash: u64, bytes: &[u8]) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// The fingerprint of `labels`: 64-bit FNV-1a over the sorted names and
/// values, each followed by `0xff` (Prometheus's `LabelSet.Fingerprint`).
/// Shown as 16 hexadecimal digits, as Alertmanager shows it.
pub fn fingerprint(labels: &Labels) -> u64 {
    labels.iter().fold(FNV_OFFSET, |hash, (name, value)| {
        let hash = add(hash, name.as_bytes());
        let hash = add(hash, &[SEPARATOR]);
        let hash = add(hash, value.as_bytes());
        add(hash, &[SEPARATOR])
    })
}

/// `fingerprint` as Alertmanager writes it.
pub(crate) fn fingerprint_hex(fingerprint: u64) -> String {
    format!("{fingerprint:016x}")
}

/// `{name="value",...}` in label order: Alertmanager's group key part.
pub(crate) fn selector(labels: &Labels) -> String {
    let mut text = String::from("{");
    for (index, (name, value)) in labels.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        text.push_str(name);
        text.push('=');
        // A JSON string is a valid Go-quoted string for label values.
        text.push_str(&serde_json::Value::from(value.as_str()).to_string());
    }
    text.push('}');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn fingerprints_match_prometheus() {
        // Values from prometheus/common model/signature_test.go
        // (TestLabelsToSignature and the fingerprint of an empty set).
        assert_eq!(fingerprint(&Labels::new()), 14_695_981_039_346_656_037);
        assert_eq!(
            fingerprint(&labels(&[
                ("name", "garland, briggs"),
                ("fear", "love is not enough")
            ])),
            5_799_056_148_416_392_346
        );
    }

    #[test]
    fn order_of_insertion_does_not_matter_and_values_do() {
        let a = labels(&[("alertname", "X"), ("severity", "warning")]);
        let b = labels(&[("severity", "warning"), ("alertname", "X")]);
        let c = labels(&[("alertname", "X"), ("severity", "critical")]);
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&c));
        assert_eq!(fingerprint_hex(0xab), "00000000000000ab");
    }

    #[test]
    fn selectors_quote_values() {
        assert_eq!(
            selector(&labels(&[("alertname", "X"), ("path", "a\"b")])),
            r#"{alertname="X",path="a\"b"}"#
        );
        assert_eq!(selector(&Labels::new()), "{}");
    }
}
