//! Signed checkpoints in the C2SP `tlog-checkpoint` format, wrapped in a C2SP `signed-note`
//! with an Ed25519 signature, so standard transparency-log tooling (e.g. Go's `note` and
//! `tlog` packages, witnesses) can read and check them.
//!
//! A checkpoint note:
//! ```text
//! <origin>
//! <tree size, decimal>
//! <root hash, base64>
//!
//! — <key name> <base64(key hash[4] ‖ Ed25519 signature[64])>
//! ```
//! The key hash is the first 4 bytes of `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)`. Keys are
//! written in the note formats: `PRIVATE+KEY+<name>+<hash hex>+<base64(0x01 ‖ seed)>` and
//! `<name>+<hash hex>+<base64(0x01 ‖ public key)>` for verifiers.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::codes::Code;
use crate::tree::Hash;

const ED25519_ALG: u8 = 0x01;
const SIG_PREFIX: &str = "\u{2014} ";

/// Errors about keys and checkpoints. Codes are stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The key text is not a note key.
    #[error("{code}: {0}", code = Code::KeyMalformed)]
    Key(String),
    /// The note is not a well-formed checkpoint.
    #[error("{code}: {0}", code = Code::CheckpointMalformed)]
    Malformed(String),
    /// No valid signature by the trusted key.
    #[error("{code}: {0}", code = Code::CheckpointSignatureInvalid)]
    Signature(String),
}

impl CheckpointError {
    /// Stable code (the start of the message).
    pub fn code(&self) -> Code {
        match self {
            CheckpointError::Key(_) => Code::KeyMalformed,
            CheckpointError::Malformed(_) => Code::CheckpointMalformed,
            CheckpointError::Signature(_) => Code::CheckpointSignatureInvalid,
        }
    }
}

fn key_hash(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ED25519_ALG]);
    h.update(public);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('+') && !name.chars().any(char::is_whitespace)
}

/// The log's signing key.
#[derive(Clone)]
pub struct LogSigner {
    name: String,
    key: SigningKey,
}

impl std::fmt::Debug for LogSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LogSigner({})", self.verifier())
    }
}

impl LogSigner {
    /// A signer from a 32-byte seed (the caller draws it from the OS).
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, CheckpointError> {
        if !valid_name(name) {
            return Err(CheckpointError::Key(format!(
                "key name `{name}` must be non-empty, without `+` or spaces"
            )));
        }
        Ok(LogSigner {
            name: name.to_string(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// Parse `PRIVATE+KEY+<name>+<hash>+<base64>`.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let text = text.trim();
        let rest = text
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| CheckpointError::Key("expected PRIVATE+KEY+name+hash+key".into()))?;
        // The base64 key may itself contain `+`: split off name and hash only.
        let parts: Vec<&str> = rest.splitn(3, '+').collect();
        let [name, hash, key] = parts.as_slice() else {
            return Err(CheckpointError::Key(
                "expected PRIVATE+KEY+name+hash+key".into(),
            ));
        };
        let raw = B64
            .decode(key)
            .map_err(|e| CheckpointError::Key(e.to_string()))?;
        if raw.len() != 33 || raw[0] != ED25519_ALG {
            return Err(CheckpointError::Key("not an Ed25519 private key".into()));
        }
        let seed: [u8; 32] = raw[1..].try_into().expect("32 bytes");
        let signer = Self::from_seed(name, seed)?;
        if hex::encode(key_hash(name, &signer.public())) != *hash {
            return Err(CheckpointError::Key(
                "key hash does not match the key".into(),
            ));
        }
        Ok(signer)
    }

    /// The private key in note format (keep it secret: file mode 0600).
    pub fn to_note_key(&self) -> String {
        let mut raw = vec![ED25519_ALG];
        raw.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.name,
            hex::encode(key_hash(&self.name, &self.public())),
            B64.encode(raw)
        )
    }

    /// Key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Raw public key.
    pub fn public(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// Sign a checkpoint, returning the signed note text.
    pub fn sign(&self, cp: &Checkpoint) -> String {
        let body = cp.body();
        let sig = self.key.sign(body.as_bytes());
        let mut raw = key_hash(&self.name, &self.public()).to_vec();
        raw.extend_from_slice(&sig.to_bytes());
        format!("{body}\n{SIG_PREFIX}{} {}\n", self.name, B64.encode(raw))
    }
}

/// A public key that verifies checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key: VerifyingKey,
}

impl VerifierKey {
    /// Parse `<name>+<hash>+<base64(0x01 ‖ key)>`.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let parts: Vec<&str> = text.trim().splitn(3, '+').collect();
        let [name, hash, key] = parts.as_slice() else {
            return Err(CheckpointError::Key("expected name+hash+key".into()));
        };
        let raw = B64
            .decode(key)
            .map_err(|e| CheckpointError::Key(e.to_string()))?;
        if raw.len() != 33 || raw[0] != ED25519_ALG {
            return Err(CheckpointError::Key("not an Ed25519 public key".into()));
        }
        let public: [u8; 32] = raw[1..].try_into().expect("32 bytes");
        if !valid_name(name) || hex::encode(key_hash(name, &public)) != *hash {
            return Err(CheckpointError::Key(
                "key hash does not match the key".into(),
            ));
        }
        let key =
            VerifyingKey::from_bytes(&public).map_err(|e| CheckpointError::Key(e.to_string()))?;
        Ok(VerifierKey {
            name: name.to_string(),
            key,
        })
    }

    /// Key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Raw public key.
    pub fn public(&self) -> [u8; 32] {
        self.key.to_bytes()
    }
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut raw = vec![ED25519_ALG];
        raw.extend_from_slice(&self.public());
        write!(
            f,
            "{}+{}+{}",
            self.name,
            hex::encode(key_hash(&self.name, &self.public())),
            B64.encode(raw)
        )
    }
}

/// A checkpoint: the log commits to `root` as the Merkle tree hash of its first `size` leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Log origin (unique name of the log).
    pub origin: String,
    /// Tree size.
    pub size: u64,
    /// Root hash.
    pub root: Hash,
}

impl Checkpoint {
    /// The note body (three lines, each ending in a newline).
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Parse a signed note and verify that `key` signed it.
    pub fn open(note: &str, key: &VerifierKey) -> Result<Checkpoint, CheckpointError> {
        let (body, sigs) = note.split_once("\n\n").ok_or_else(|| {
            CheckpointError::Malformed("no blank line between body and signatures".into())
        })?;
        let body = format!("{body}\n");
        let cp = Self::parse_body(&body)?;
        let want = key_hash(&key.name, &key.public());
        let mut seen = false;
        for line in sigs.lines() {
            let Some(rest) = line.strip_prefix(SIG_PREFIX) else {
                return Err(CheckpointError::Malformed(format!(
                    "signature line `{line}` does not start with an em dash"
                )));
            };
            let Some((name, b64)) = rest.split_once(' ') else {
                return Err(CheckpointError::Malformed(
                    "signature line without name and signature".into(),
                ));
            };
            let raw = B64
                .decode(b64)
                .map_err(|e| CheckpointError::Malformed(e.to_string()))?;
            if name != key.name || raw.len() != 68 || raw[..4] != want {
                continue; // another key's signature (e.g. a witness): not ours to judge
            }
            seen = true;
            let sig = Signature::from_slice(&raw[4..])
                .map_err(|e| CheckpointError::Signature(e.to_string()))?;
            key.key.verify_strict(body.as_bytes(), &sig).map_err(|_| {
                CheckpointError::Signature(format!(
                    "signature by {} does not match the checkpoint",
                    key.name
                ))
            })?;
        }
        if !seen {
            return Err(CheckpointError::Signature(format!(
                "no signature by key {}",
                key.name
            )));
        }
        Ok(cp)
    }

    /// Parse the body without checking signatures (to show what a note claims).
    pub fn parse_unverified(note: &str) -> Result<Checkpoint, CheckpointError> {
        let body = note
            .split_once("\n\n")
            .map(|(b, _)| format!("{b}\n"))
            .unwrap_or_else(|| note.to_string());
        Self::parse_body(&body)
    }

    fn parse_body(body: &str) -> Result<Checkpoint, CheckpointError> {
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        let size = lines.next().unwrap_or_default();
        let root = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(CheckpointError::Malformed("empty origin line".into()));
        }
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(CheckpointError::Malformed(format!(
                "tree size `{size}` is not a decimal number"
            )));
        }
        let size: u64 = size
            .parse()
            .map_err(|_| CheckpointError::Malformed("tree size out of range".into()))?;
        let root = B64
            .decode(root)
            .map_err(|e| CheckpointError::Malformed(format!("root hash: {e}")))?;
        let root: Hash = root
            .try_into()
            .map_err(|_| CheckpointError::Malformed("root hash must be 32 bytes".into()))?;
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_open_round_trip_and_tamper() {
        let s = LogSigner::from_seed("example.com/log", [7; 32]).unwrap();
        let cp = Checkpoint {
            origin: "example.com/log".into(),
            size: 42,
            root: [1; 32],
        };
        let note = s.sign(&cp);
        assert!(note.starts_with("example.com/log\n42\nAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n\n\u{2014} example.com/log "));
        assert_eq!(Checkpoint::open(&note, &s.verifier()).unwrap(), cp);
        let forged = note.replace("\n42\n", "\n43\n");
        assert!(matches!(
            Checkpoint::open(&forged, &s.verifier()),
            Err(CheckpointError::Signature(_))
        ));
        let other = LogSigner::from_seed("example.com/log", [8; 32]).unwrap();
        assert!(Checkpoint::open(&note, &other.verifier()).is_err());
        // Keys round-trip through their note encodings.
        let back = LogSigner::parse(&s.to_note_key()).unwrap();
        assert_eq!(back.public(), s.public());
        assert_eq!(
            VerifierKey::parse(&s.verifier().to_string()).unwrap(),
            s.verifier()
        );
        assert!(VerifierKey::parse("x+00000000+AAAA").is_err());
    }

    #[test]
    fn body_rejects_bad_sizes() {
        for body in [
            "o\n01\nAA==\n",
            "o\n-1\nAA==\n",
            "\n1\nAA==\n",
            "o\n1\nAA==\n",
        ] {
            assert!(Checkpoint::parse_body(body).is_err(), "{body:?}");
        }
    }
}
