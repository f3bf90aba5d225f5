//! API tokens: 256-bit random secrets, stored only as SHA-256 digests.
//!
//! A token reads `cg_<id>_<secret>`: `id` (8 random bytes, hex) is the lookup key, `secret` (32
//! random bytes, hex) is checked against its stored SHA-256 digest in constant time. Argon2 is for
//! human passwords; a 256-bit random secret cannot be brute-forced, so a fast hash is enough and keeps
//! authentication off the latency budget. The secret never reaches a log: only the id does.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A freshly minted token: show `plaintext` once, store `id` and `digest`.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Lookup key (public).
    pub id: String,
    /// SHA-256 of the secret, hex.
    pub digest: String,
    /// The whole token, to give to its holder once.
    pub plaintext: String,
}

/// Mint a token.
pub fn mint() -> NewToken {
    let mut rng = rand::rng();
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut id);
    rng.fill_bytes(&mut secret);
    let id = hex::encode(id);
    let secret = hex::encode(secret);
    NewToken {
        digest: digest(&secret),
        plaintext: format!("cg_{id}_{secret}"),
        id,
    }
}

/// SHA-256 of a secret, hex.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Split a presented token into (id, secret); `None` when it is not shaped like one.
pub fn parse(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("cg_")?;
    let (id, secret) = rest.split_once('_')?;
    let hexlike = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hexlike(id, 16) && hexlike(secret, 64)).then_some((id, secret))
}

/// Whether `secret` matches the stored digest, in constant time.
pub fn verify(secret: &str, stored_digest: &str) -> bool {
    let presented = digest(secret);
    presented.as_bytes().ct_eq(stored_digest.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_verify_and_others_do_not() {
        let t = mint();
        let (id, secret) = parse(&t.plaintext).unwrap();
        assert_eq!(id, t.id);
        assert!(verify(secret, &t.digest));
        let other = mint();
        let (_, other_secret) = parse(&other.plaintext).unwrap();
        assert!(!verify(other_secret, &t.digest));
        assert_ne!(t.plaintext, other.plaintext);
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        for bad in [
            "",
            "cg_",
            "cg_abc_def",
            "xx_0123456789abcdef_00",
            "cg_0123456789abcdef",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
