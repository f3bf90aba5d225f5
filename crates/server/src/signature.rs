//! Webhook signatures: HMAC-SHA256 over the raw body, compared in constant time.
//!
//! PagerDuty V3 signs every delivery with each of the subscription's secrets and sends the
//! results in one `X-PagerDuty-Signature` header, `v1=<hex>` values separated by commas, so a
//! secret can be rotated without downtime. A delivery is authentic when any `v1` value matches
//! any configured secret ([`verify_v1`]). GitHub's `X-Hub-Signature-256: sha256=<hex>` is the same
//! MAC with another prefix ([`verify_prefixed`]), for the GitHub webhooks to come.

use hmac::{KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = hmac::Hmac<Sha256>;

/// A webhook signing secret (never printed: `Debug` shows only its length).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// A secret from its text (surrounding whitespace, such as a file's final newline, removed).
    /// `None` when nothing is left.
    pub fn new(text: &str) -> Option<Secret> {
        let t = text.trim();
        (!t.is_empty()).then(|| Secret(t.as_bytes().to_vec()))
    }

    /// Every secret of a text with one per line, or separated by commas (blank lines skipped).
    pub fn parse_list(text: &str) -> Vec<Secret> {
        text.split(['\n', ',']).filter_map(Secret::new).collect()
    }

    /// The hex HMAC-SHA256 of `body` under this secret (tests sign with it).
    pub fn sign_hex(&self, body: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    fn verifies(&self, body: &[u8], sig: &[u8]) -> bool {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(body);
        // `verify_slice` compares in constant time.
        mac.verify_slice(sig).is_ok()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// Why a signature header does not authenticate a body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No header, or no value of the version this server checks.
    #[error("the request carries no {0} signature")]
    Missing(&'static str),
    /// Values were given but none matches any configured secret.
    #[error("no signature of the request matches a configured secret")]
    Mismatch,
}

/// Verify a PagerDuty-style header: comma-separated `v1=<hex>` values (other versions ignored),
/// accepted when any value is the HMAC-SHA256 of `body` under any of `secrets`. Every pair is
/// compared (in constant time each), so the time taken does not say which one matched.
pub fn verify_v1(
    secrets: &[Secret],
    header: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let sigs: Vec<Vec<u8>> = header
        .unwrap_or("")
        .split(',')
        .filter_map(|v| v.trim().strip_prefix("v1="))
        // A value that is not hex cannot match; it still counts as a signature given.
        .map(|h| hex::decode(h.trim()).unwrap_or_default())
        .collect();
    if sigs.is_empty() {
        return Err(SignatureError::Missing("v1"));
    }
    let mut ok = false;
    for secret in secrets {
        for sig in &sigs {
            ok |= secret.verifies(body, sig);
        }
    }
    if ok {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Verify a header `PREFIX<hex>` (GitHub: `sha256=`) against any of `secrets`.
pub fn verify_prefixed(
    secrets: &[Secret],
    prefix: &'static str,
    header: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let sig = header
        .and_then(|h| h.trim().strip_prefix(prefix))
        .ok_or(SignatureError::Missing(prefix))?;
    let sig = hex::decode(sig).unwrap_or_default();
    let mut ok = false;
    for secret in secrets {
        ok |= secret.verifies(body, &sig);
    }
    if ok {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_v1_value_under_any_secret_verifies() {
        let old = Secret::new("old-secret").unwrap();
        let new = Secret::new("new-secret\n").unwrap();
        let body = br#"{"event":{"id":"1"}}"#;
        let good = old.sign_hex(body);
        let header = format!("v1={},v1={}", "00".repeat(32), good);
        assert_eq!(
            verify_v1(&[new.clone(), old.clone()], Some(&header), body),
            Ok(())
        );
        assert_eq!(
            verify_v1(std::slice::from_ref(&new), Some(&header), body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_v1(std::slice::from_ref(&old), Some(&good), body),
            Err(SignatureError::Missing("v1")),
            "a bare hex value is not a v1 signature"
        );
        assert_eq!(
            verify_v1(std::slice::from_ref(&old), None, body),
            Err(SignatureError::Missing("v1"))
        );
        assert_eq!(
            verify_v1(std::slice::from_ref(&old), Some("v1=zz"), body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_v1(
                std::slice::from_ref(&old),
                Some(&format!("v1={good}")),
                b"other"
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_v1(&[], Some(&header), body),
            Err(SignatureError::Mismatch)
        );
        let gh = format!("sha256={}", new.sign_hex(body));
        assert_eq!(verify_prefixed(&[new], "sha256=", Some(&gh), body), Ok(()));
    }

    #[test]
    fn secrets_are_listed_and_never_printed() {
        let s = Secret::parse_list("a\n\n b ,c\n");
        assert_eq!(s.len(), 3);
        assert_eq!(format!("{:?}", s[0]), "Secret(1 bytes)");
        assert!(Secret::new("  \n").is_none());
    }
}
