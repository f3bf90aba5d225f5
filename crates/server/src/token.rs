//! API tokens: 256-bit random secrets, stored only as SHA-256 digests.
//!
//! A token reads `cg_<id>_<secret>`: `id` (8 random bytes, hex) is the lookup key, `secret` (32
//! random bytes, hex) is checked against its stored SHA-256 digest in constant time. Argon2 is for
//! human passwords; a 256-bit random secret cannot be brute-forced, so a fast hash is enough and keeps
//! authentication off the latency budget. The secret never reaches a log: only the id does.
//!
//! A token stands for a person (acts only as that person), a named integration with [`Scope`]s
//! (acts as `integration:NAME`, never as a person), or an admin. It may expire; it may be revoked.
//! Person and integration names are [`valid_name`]s.

use changegate_store::TokenKind;
use jiff::{SignedDuration, Timestamp};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{ApiError, ErrorCode};

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

/// What an integration token may do, beyond reading. Person tokens have no scopes (a person acts
/// as themself, with the roles the policy grants them); admin tokens hold every scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Send a classification the server records (a CI job that ran `changegate classify`).
    Classify,
    /// Attest CI-evidence checklist items (tests pass, scans clean).
    CiEvidence,
    /// Open and resolve incidents (an alerting integration).
    Incidents,
    /// Record deployments and pushes as observed (a deploy pipeline, a git hook).
    Deployments,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 4] = [
        Scope::Classify,
        Scope::CiEvidence,
        Scope::Incidents,
        Scope::Deployments,
    ];

    /// Its name: `classify`, `ci-evidence`, `incidents`, `deployments`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Classify => "classify",
            Scope::CiEvidence => "ci-evidence",
            Scope::Incidents => "incidents",
            Scope::Deployments => "deployments",
        }
    }

    /// By name.
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest person or integration name.
pub const MAX_NAME_LEN: usize = 64;

/// Whether `name` is a valid person or integration name: 1-64 characters of `a-z 0-9 . _ -`,
/// starting with a letter or digit (`[a-z0-9][a-z0-9._-]{0,63}`). Lowercase only, so one person
/// has one spelling; no `:` so a name never reads as a `team:` holder or an `integration:` actor.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME_LEN
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
}

/// The actor an integration token acts as (audit events, idempotency keys): `integration:NAME`.
/// Never a valid person name, so it never holds a person's roles.
pub fn integration_actor(name: &str) -> String {
    format!("integration:{name}")
}

/// Why a token cannot be issued (each message starts with its [`ErrorCode`]).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The person name is empty or malformed.
    #[error("{code}: person name `{0}` must be 1-64 characters of a-z 0-9 . _ - starting with a letter or digit", code = ErrorCode::InvalidPersonName)]
    InvalidPersonName(String),
    /// The integration name is empty or malformed.
    #[error("{code}: integration name `{0}` must be 1-64 characters of a-z 0-9 . _ - starting with a letter or digit", code = ErrorCode::InvalidIntegrationName)]
    InvalidIntegrationName(String),
    /// A scope name the server does not know.
    #[error("{code}: scope `{0}` is unknown (known: classify, ci-evidence, incidents, deployments)", code = ErrorCode::UnknownScope)]
    UnknownScope(String),
    /// Scopes given to a person or admin token, or none to an integration token.
    #[error("{code}: {0}", code = ErrorCode::InvalidScopes)]
    InvalidScopes(String),
    /// The expiry is malformed or not in the future.
    #[error("{code}: {0}", code = ErrorCode::InvalidExpiry)]
    InvalidExpiry(String),
    /// The request's fields do not go together (person and integration, two expiries, …).
    #[error("{code}: {0}", code = ErrorCode::InvalidBody)]
    Conflicting(String),
    /// The store refused.
    #[error(transparent)]
    Store(#[from] changegate_store::StoreError),
}

impl TokenError {
    /// The API code of the refusal (`None` for store failures).
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            TokenError::InvalidPersonName(_) => Some(ErrorCode::InvalidPersonName),
            TokenError::InvalidIntegrationName(_) => Some(ErrorCode::InvalidIntegrationName),
            TokenError::UnknownScope(_) => Some(ErrorCode::UnknownScope),
            TokenError::InvalidScopes(_) => Some(ErrorCode::InvalidScopes),
            TokenError::InvalidExpiry(_) => Some(ErrorCode::InvalidExpiry),
            TokenError::Conflicting(_) => Some(ErrorCode::InvalidBody),
            TokenError::Store(_) => None,
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Store(e) => e.into(),
            other => {
                let code = other.code().unwrap_or(ErrorCode::InvalidBody);
                let full = other.to_string();
                let message = full
                    .strip_prefix(&format!("{code}: "))
                    .unwrap_or(&full)
                    .to_string();
                ApiError::new(code, message)
            }
        }
    }
}

/// What a token to issue stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// Acts only as this person.
    Person(String),
    /// This integration, with these scopes (at least one).
    Integration {
        /// Its name (valid like a person's).
        name: String,
        /// What it may do.
        scopes: Vec<Scope>,
    },
    /// An admin, recorded as this person.
    Admin(String),
}

/// A token to issue: who, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSpec {
    /// Who it stands for.
    pub subject: Subject,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
}

impl TokenSpec {
    /// Check names and scopes (the expiry against `now`): `(kind, name, scope names)` to store.
    pub fn validate(&self, now: Timestamp) -> Result<(TokenKind, &str, Vec<String>), TokenError> {
        if let Some(e) = self.expires_at
            && e <= now
        {
            return Err(TokenError::InvalidExpiry(format!(
                "the expiry {e} is not after now ({now})"
            )));
        }
        match &self.subject {
            Subject::Person(p) | Subject::Admin(p) => {
                if !valid_name(p) {
                    return Err(TokenError::InvalidPersonName(p.clone()));
                }
                let kind = if matches!(self.subject, Subject::Admin(_)) {
                    TokenKind::Admin
                } else {
                    TokenKind::Person
                };
                Ok((kind, p, Vec::new()))
            }
            Subject::Integration { name, scopes } => {
                if !valid_name(name) {
                    return Err(TokenError::InvalidIntegrationName(name.clone()));
                }
                if scopes.is_empty() {
                    return Err(TokenError::InvalidScopes(
                        "an integration token needs at least one scope".into(),
                    ));
                }
                let mut names: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
                names.sort();
                names.dedup();
                Ok((TokenKind::Integration, name, names))
            }
        }
    }
}

/// A token as asked for on the command line (`token create`) or in `POST /api/v1/tokens`.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest<'a> {
    /// A person token for this person (an admin token with `admin`).
    pub person: Option<&'a str>,
    /// An integration token for this integration.
    pub integration: Option<&'a str>,
    /// An admin token (with `person`).
    pub admin: bool,
    /// Scope names (integration tokens).
    pub scopes: &'a [String],
    /// A lifetime (`90d`, see [`parse_lifetime`]).
    pub expires_in: Option<&'a str>,
    /// An instant (RFC 3339).
    pub expires_at: Option<&'a str>,
}

impl TokenRequest<'_> {
    /// The token it asks for, its expiry resolved against `now`; validated by
    /// [`TokenSpec::validate`] when it is stored.
    pub fn spec(&self, now: Timestamp) -> Result<TokenSpec, TokenError> {
        let scopes = parse_scopes(self.scopes)?;
        let subject = match (self.person, self.integration) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(TokenError::Conflicting(
                    "name exactly one of a person or an integration".into(),
                ));
            }
            (Some(p), None) => {
                if !scopes.is_empty() {
                    return Err(TokenError::InvalidScopes(
                        "scopes are for integration tokens; a person token acts as its person \
                         with the roles the policy grants"
                            .into(),
                    ));
                }
                if self.admin {
                    Subject::Admin(p.to_string())
                } else {
                    Subject::Person(p.to_string())
                }
            }
            (None, Some(name)) => {
                if self.admin {
                    return Err(TokenError::Conflicting(
                        "an integration token cannot be an admin token".into(),
                    ));
                }
                Subject::Integration {
                    name: name.to_string(),
                    scopes,
                }
            }
        };
        let expires_at = match (self.expires_in, self.expires_at) {
            (Some(_), Some(_)) => {
                return Err(TokenError::Conflicting(
                    "give an expiry as a lifetime or as an instant, not both".into(),
                ));
            }
            (Some(life), None) => Some(now.checked_add(parse_lifetime(life)?).map_err(|e| {
                TokenError::InvalidExpiry(format!("lifetime `{life}` is out of range: {e}"))
            })?),
            (None, Some(at)) => Some(at.parse::<Timestamp>().map_err(|e| {
                TokenError::InvalidExpiry(format!("expiry `{at}` is not an RFC 3339 instant: {e}"))
            })?),
            (None, None) => None,
        };
        Ok(TokenSpec {
            subject,
            expires_at,
        })
    }
}

/// Parse scope names (`classify`, `ci-evidence`, …), refusing unknown ones.
pub fn parse_scopes<S: AsRef<str>>(names: &[S]) -> Result<Vec<Scope>, TokenError> {
    names
        .iter()
        .map(|n| {
            Scope::parse(n.as_ref()).ok_or_else(|| TokenError::UnknownScope(n.as_ref().into()))
        })
        .collect()
}

/// Parse a lifetime: a positive whole number and a unit, `m` (minutes), `h`, `d` (24 h) or `w`
/// (7 d): `90d`, `12h`, `2w`.
pub fn parse_lifetime(s: &str) -> Result<SignedDuration, TokenError> {
    let bad = || {
        TokenError::InvalidExpiry(format!(
            "lifetime `{s}` must be a positive number and a unit m, h, d or w (e.g. 90d)"
        ))
    };
    let s = s.trim();
    let unit = s.chars().last().ok_or_else(bad)?;
    let n: i64 = s[..s.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    let secs = match unit {
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return Err(bad()),
    };
    if n <= 0 || n > 100 * 366 {
        return Err(bad());
    }
    Ok(SignedDuration::from_secs(n * secs))
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

    #[test]
    fn names_are_lowercase_words_without_colons() {
        for good in ["alice", "bob.smith", "ci-1", "0day", "a_b", &"a".repeat(64)] {
            assert!(valid_name(good), "{good}");
        }
        for bad in [
            "",
            " ",
            "Alice",
            "-alice",
            ".alice",
            "_x",
            "team:sre",
            "integration:ci",
            "al ice",
            "alice\0",
            "alice@example.com",
            "élise",
            &"a".repeat(65),
        ] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn lifetimes_and_scopes_parse_strictly() {
        assert_eq!(
            parse_lifetime("90d").unwrap(),
            SignedDuration::from_hours(90 * 24)
        );
        assert_eq!(
            parse_lifetime("2w").unwrap(),
            SignedDuration::from_hours(14 * 24)
        );
        assert_eq!(
            parse_lifetime("30m").unwrap(),
            SignedDuration::from_mins(30)
        );
        for bad in ["", "d", "0d", "-1d", "90", "90y", "1.5d", "9999999999d"] {
            assert!(parse_lifetime(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_scopes(&["classify", "ci-evidence"]).unwrap(),
            vec![Scope::Classify, Scope::CiEvidence]
        );
        let e = parse_scopes(&["classify", "deploy"]).unwrap_err();
        assert!(e.to_string().starts_with("unknown-scope: "), "{e}");
    }

    #[test]
    fn specs_are_validated() {
        let now = Timestamp::UNIX_EPOCH;
        let spec = |subject, expires_at| TokenSpec {
            subject,
            expires_at,
        };
        assert_eq!(
            spec(Subject::Person("".into()), None)
                .validate(now)
                .unwrap_err()
                .code(),
            Some(ErrorCode::InvalidPersonName)
        );
        assert_eq!(
            spec(Subject::Admin("Root".into()), None)
                .validate(now)
                .unwrap_err()
                .code(),
            Some(ErrorCode::InvalidPersonName)
        );
        let ci = |scopes: Vec<Scope>| Subject::Integration {
            name: "ci".into(),
            scopes,
        };
        assert_eq!(
            spec(ci(vec![]), None).validate(now).unwrap_err().code(),
            Some(ErrorCode::InvalidScopes)
        );
        assert_eq!(
            spec(ci(vec![Scope::Classify]), Some(now))
                .validate(now)
                .unwrap_err()
                .code(),
            Some(ErrorCode::InvalidExpiry)
        );
        let s = spec(
            ci(vec![Scope::Incidents, Scope::Classify, Scope::Classify]),
            None,
        );
        let (kind, name, scopes) = s.validate(now).unwrap();
        assert_eq!((kind, name), (TokenKind::Integration, "ci"));
        assert_eq!(
            scopes,
            vec!["classify".to_string(), "incidents".to_string()]
        );
    }
}
