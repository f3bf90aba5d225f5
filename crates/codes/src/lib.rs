//! One scheme for every stable code changegate emits.
//!
//! Pipelines, dashboards, auditors and scripts key on codes (`approval-missing`, `dep-major`,
//! `unknown-role`, …) while the human messages are free to improve, so codes are part of the
//! interface. Every crate declares its codes with [`codes!`]: each code is an enum variant with its
//! kebab-case string and its one-line description in one place, so code matches on the type, a typo
//! fails to compile, and the full list is known at compile time.
//!
//! Each enum implements [`CodeSet`]; the binary gathers every set into one registry (`changegate
//! codes`), which a workspace test checks (unique, kebab-case, documented), snapshots (a rename is
//! visible in review) and renders into `docs/codes.md`.
//!
//! ```
//! changegate_codes::codes! {
//!     /// Why a doughnut was refused.
//!     pub enum Refusal in "bakery" {
//!         /// The doughnut was stale.
//!         Stale = "doughnut-stale",
//!         /// The shop was closed.
//!         Closed = "shop-closed",
//!     }
//! }
//! assert_eq!(Refusal::Stale.as_str(), "doughnut-stale");
//! assert_eq!("shop-closed".parse::<Refusal>(), Ok(Refusal::Closed));
//! assert_eq!(Refusal::Closed.description(), "The shop was closed.");
//! assert_eq!(serde_json::to_string(&Refusal::Stale).unwrap(), "\"doughnut-stale\"");
//! ```

#![deny(missing_docs)]

#[doc(hidden)]
pub use serde as __serde;

/// One code of the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entry {
    /// The family the code belongs to (`gate`, `calendar`, `policy-diagnostic`, `facet`, …).
    pub domain: &'static str,
    /// The stable kebab-case code.
    pub code: &'static str,
    /// What it means, one sentence.
    pub description: &'static str,
}

/// A set of codes made by [`codes!`].
pub trait CodeSet: Copy + Eq + 'static {
    /// The family name, as in [`Entry::domain`].
    const DOMAIN: &'static str;
    /// Every code, in declaration order.
    const ALL: &'static [Self];
    /// The stable kebab-case code.
    fn as_str(self) -> &'static str;
    /// What it means.
    fn description(self) -> &'static str;

    /// Every code as a registry entry.
    fn entries() -> Vec<Entry> {
        Self::ALL
            .iter()
            .map(|c| Entry {
                domain: Self::DOMAIN,
                code: c.as_str(),
                description: c.description(),
            })
            .collect()
    }
}

/// A code string that names no code of the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCode {
    /// The family asked.
    pub domain: &'static str,
    /// What was given.
    pub given: String,
}

impl std::fmt::Display for UnknownCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown {} code `{}`", self.domain, self.given)
    }
}

impl std::error::Error for UnknownCode {}

/// Declares a set of codes: an enum whose variants each carry a kebab-case code and a doc comment
/// (the description, shown in rustdoc and in the registry). Generates `ALL`, `as_str`,
/// `description`, `Display`, `FromStr`, serde (as the string) and [`CodeSet`].
///
/// Extra facts per code (does it deny? which HTTP status?) belong in an exhaustive `match` in the
/// crate that owns the set, so adding a code without deciding them fails to compile.
#[macro_export]
macro_rules! codes {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident in $domain:literal {
            $(
                #[doc = $desc:literal]
                $(#[doc = $more:literal])*
                $variant:ident = $code:literal
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $(
                #[doc = $desc]
                $(#[doc = $more])*
                #[doc = concat!("\n\nCode: `", $code, "`.")]
                $variant,
            )*
        }

        impl $name {
            /// Every code, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The stable kebab-case code.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $code,)* }
            }

            /// What it means (the first paragraph of its doc comment).
            pub const fn description(self) -> &'static str {
                match self { $($name::$variant => $crate::__trim($desc),)* }
            }
        }

        impl $crate::CodeSet for $name {
            const DOMAIN: &'static str = $domain;
            const ALL: &'static [Self] = $name::ALL;
            fn as_str(self) -> &'static str { $name::as_str(self) }
            fn description(self) -> &'static str { $name::description(self) }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::UnknownCode;
            fn from_str(s: &str) -> ::std::result::Result<Self, $crate::UnknownCode> {
                match s {
                    $($code => Ok($name::$variant),)*
                    _ => Err($crate::UnknownCode { domain: $domain, given: s.to_string() }),
                }
            }
        }

        impl ::std::cmp::PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool { self.as_str() == other }
        }

        impl ::std::cmp::PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool { self.as_str() == *other }
        }

        impl ::std::convert::AsRef<str> for $name {
            fn as_ref(&self) -> &str { self.as_str() }
        }

        impl $crate::__serde::Serialize for $name {
            fn serialize<S: $crate::__serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> $crate::__serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::__serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as $crate::__serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(<D::Error as $crate::__serde::de::Error>::custom)
            }
        }
    };
}

/// Trims the leading space rustdoc leaves in `/// text` (used by [`codes!`]).
#[doc(hidden)]
pub const fn __trim(s: &'static str) -> &'static str {
    match s.as_bytes() {
        [b' ', rest @ ..] => {
            // SAFETY-free: splitting off one ASCII byte keeps UTF-8 valid.
            match std::str::from_utf8(rest) {
                Ok(t) => t,
                Err(_) => s,
            }
        }
        _ => s,
    }
}

/// Why a registry is not well formed; empty when it is. Checks: every code kebab-case
/// (`[a-z0-9]` words joined by single `-`), unique within its domain, described by a sentence
/// that starts with a capital letter and ends with a full stop; and a code string shared by two
/// domains only when listed in `shared` (a deliberate re-export, such as the gate passing a
/// calendar reason through).
pub fn problems(entries: &[Entry], shared: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen: std::collections::BTreeMap<(&str, &str), ()> = Default::default();
    let mut domains_of: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for e in entries {
        if !is_kebab(e.code) {
            out.push(format!("{}: `{}` is not kebab-case", e.domain, e.code));
        }
        if seen.insert((e.domain, e.code), ()).is_some() {
            out.push(format!("{}: `{}` is declared twice", e.domain, e.code));
        }
        let d = e.description.trim();
        if d.is_empty()
            || !d.ends_with('.')
            || !d
                .chars()
                .next()
                .is_some_and(|c| c.is_uppercase() || c == '`')
        {
            out.push(format!(
                "{}: `{}` needs a description that is one sentence starting with a capital and ending with `.` (got {:?})",
                e.domain, e.code, e.description
            ));
        }
        domains_of.entry(e.code).or_default().push(e.domain);
    }
    for (code, domains) in domains_of {
        let mut d = domains.clone();
        d.dedup();
        if d.len() > 1 && !shared.contains(&code) {
            out.push(format!(
                "`{code}` is declared by {}: give one of them another code, or list it as deliberately shared",
                d.join(" and ")
            ));
        }
    }
    out
}

/// `[a-z0-9]` words joined by single `-`.
pub fn is_kebab(code: &str) -> bool {
    !code.is_empty()
        && code.split('-').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    codes! {
        /// Test codes.
        pub enum T in "test" {
            /// First one.
            One = "one",
            /// Second one, with more.
            ///
            /// More text that is not the description.
            TwoWords = "two-words",
        }
    }

    #[test]
    fn round_trips_and_describes() {
        for c in T::ALL {
            assert_eq!(c.as_str().parse::<T>(), Ok(*c));
            let json = serde_json::to_string(c).unwrap();
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), *c);
        }
        assert_eq!(T::TwoWords.description(), "Second one, with more.");
        assert_eq!(
            "three".parse::<T>().unwrap_err().to_string(),
            "unknown test code `three`"
        );
        assert_eq!(T::entries().len(), 2);
        assert!(T::One == "one" && T::One != "two-words");
    }

    #[test]
    fn problems_are_found() {
        let bad = [
            Entry {
                domain: "a",
                code: "Bad_Code",
                description: "Fine.",
            },
            Entry {
                domain: "a",
                code: "x",
                description: "Fine.",
            },
            Entry {
                domain: "a",
                code: "x",
                description: "no capital",
            },
            Entry {
                domain: "b",
                code: "x",
                description: "Fine.",
            },
        ];
        let p = problems(&bad, &[]);
        assert_eq!(p.len(), 4, "{p:#?}");
        assert!(problems(&bad[1..2], &[]).is_empty());
        assert!(problems(&[bad[1], bad[3]], &["x"]).is_empty());
        assert!(!is_kebab("a--b") && !is_kebab("-a") && !is_kebab("") && is_kebab("p0-freeze"));
    }
}
