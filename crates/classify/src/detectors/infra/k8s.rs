//! `infra-k8s`: Kubernetes manifests, Helm values and Compose files (any YAML that is not a
//! lockfile, OpenAPI document or feature-flag file).
//!
//! Every document of the stream is flattened into leaf paths (see `structured`) and each changed
//! leaf is claimed by a rule: replicas / CPU and memory requests and limits / HPA bounds →
//! `infra-scaling`; env entries → `env-added` / `env-removed` / `env-changed`; secret references
//! → `secret-rotated`; `node` images → `runtime-upgrade`; `postgres` images →
//! `database-engine-upgrade` (both only on a major change); log-level keys → `log-level`. The
//! file is explained only when every changed leaf is claimed; anything else keeps it
//! `unclassified`.

use std::collections::BTreeMap;

use changegate_policy::facets::FacetCode;

use crate::facet::{evidence_at, facet, unparseable};
use crate::parse::structured::{
    Format, Key, LeafChange, Leaves, contains_seq, diff, flatten_docs, has_prefix, parse,
};
use crate::util::{globset, per_file, text_at};
use crate::{Change, ChangedFile, Detector, Evidence, FileStatus, Finding, Side};

/// The Kubernetes / Helm / Compose detector.
pub struct InfraK8s;

const SCALING_KEYS: &[&str] = &["replicas", "replicaCount", "minReplicas", "maxReplicas"];
const SECRET_KEYS: &[&str] = &[
    "secretKeyRef",
    "secretRef",
    "secretName",
    "existingSecret",
    "remoteRef",
];
const ENV_CONTAINERS: &[&str] = &["env", "environment", "extraEnv", "envVars"];

impl Detector for InfraK8s {
    fn id(&self) -> &'static str {
        "infra-k8s"
    }
    fn description(&self) -> &'static str {
        "Kubernetes manifests, Helm values, Compose: scaling, env entries, secret references, runtime and database images, log level"
    }
    fn facets(&self) -> &'static [FacetCode] {
        &[
            FacetCode::InfraScaling,
            FacetCode::EnvAdded,
            FacetCode::EnvRemoved,
            FacetCode::EnvChanged,
            FacetCode::SecretRotated,
            FacetCode::RuntimeUpgrade,
            FacetCode::DatabaseEngineUpgrade,
            FacetCode::LogLevel,
            FacetCode::DocsOnly,
            FacetCode::Unparseable,
        ]
    }
    fn splits_files(&self) -> bool {
        true
    }
    fn detect(&self, change: &Change<'_>) -> Finding {
        let flags = globset(&change.settings.feature_flag_paths);
        per_file(
            change.files,
            || (),
            |_, f, out| {
                if Format::of(&f.path) != Some(Format::Yaml) || flags.is_match(&f.path) {
                    return;
                }
                let name = crate::util::file_name(&f.path);
                if name == "pnpm-lock.yaml"
                    || name.starts_with("openapi")
                    || name.starts_with("swagger")
                {
                    return;
                }
                if change.is_binary(f) {
                    return;
                }
                self.file(change, f, out);
            },
        )
    }
}

impl InfraK8s {
    fn file(&self, change: &Change<'_>, f: &ChangedFile, out: &mut Finding) {
        let mut sides: [Leaves; 2] = [Leaves::new(), Leaves::new()];
        let mut texts: [Option<String>; 2] = [None, None];
        for (i, side) in [Side::Base, Side::Head].into_iter().enumerate() {
            let path = if side == Side::Base {
                f.base_path()
            } else {
                &f.path
            };
            let Some(t) = text_at(change.contents, side, path) else {
                continue;
            };
            // A Helm template is Go-template text, not YAML: not understood here (unclassified),
            // and not FacetCode::Unparseable either.
            if t.as_ref().is_ok_and(|t| t.contains("{{")) {
                return;
            }
            let docs = t.and_then(|t| {
                let d = parse(Format::Yaml, &t)?;
                texts[i] = Some(t);
                Ok(d)
            });
            match docs {
                Ok(d) => {
                    if d.iter()
                        .any(|d| d.get("openapi").is_some() || d.get("swagger").is_some())
                    {
                        return; // the OpenAPI detector's input
                    }
                    sides[i] = flatten_docs(&d);
                }
                Err(e) => {
                    out.facets
                        .push(unparseable(self.id(), path, side, "YAML", e));
                    out.explained.insert(f.path.clone());
                    return;
                }
            }
        }
        let [base, head] = &sides;
        let changes = diff(base, head);
        let ht = texts[1].as_deref();
        let bt = texts[0].as_deref();
        if changes.is_empty() {
            if f.status == FileStatus::Modified || f.status == FileStatus::Renamed {
                out.facets.push(facet(
                    self.id(),
                    FacetCode::DocsOnly,
                    format!("{}: comments or formatting only (same values)", f.path),
                    vec![evidence_at(&f.path, Side::Head, ht, &[])],
                ));
                out.explained.insert(f.path.clone());
            }
            return;
        }
        let mut claimed = 0usize;
        // Keyed by the code string, then the details: the order they always came in.
        let mut facets: BTreeMap<(&'static str, String), (FacetCode, Vec<Evidence>)> =
            BTreeMap::new();
        let logs: Vec<Vec<&str>> = change
            .settings
            .log_level_keys
            .iter()
            .map(|k| k.split('.').collect())
            .collect();
        for c in &changes {
            let Some((kind, details)) = claim(c, base, head, &logs) else {
                continue;
            };
            claimed += 1;
            let (side, text) = if c.head.is_some() {
                (Side::Head, ht)
            } else {
                (Side::Base, bt)
            };
            let needle_val = c.head.as_deref().or(c.base.as_deref()).unwrap_or_default();
            let ev = evidence_at(&f.path, side, text, &[c.last(), needle_val]);
            facets
                .entry((kind.as_str(), details))
                .or_insert_with(|| (kind, Vec::new()))
                .1
                .push(ev);
        }
        for ((_, details), (kind, ev)) in facets {
            out.facets.push(facet(
                self.id(),
                kind,
                format!("{details} ({})", f.path),
                ev,
            ));
        }
        if claimed == changes.len() {
            out.explained.insert(f.path.clone());
        }
    }
}

fn pos(path: &[String], keys: &[&str]) -> Option<usize> {
    path.iter().rposition(|s| keys.contains(&s.as_str()))
}

/// Claim one changed leaf: the facet and what to say.
fn claim(
    c: &LeafChange,
    base: &Leaves,
    head: &Leaves,
    logs: &[Vec<&str>],
) -> Option<(FacetCode, String)> {
    let p = &c.path;
    let val = |v: &Option<String>| v.clone().unwrap_or_else(|| "∅".into());
    if c.base.is_some() && c.head.is_some() && logs.iter().any(|k| contains_seq(p, k)) {
        return Some((
            FacetCode::LogLevel,
            format!("{} {} → {}", c.dotted(), val(&c.base), val(&c.head)),
        ));
    }
    if pos(p, SECRET_KEYS).is_some()
        || p.first().is_some_and(|d| d.starts_with("Secret/"))
            && p.get(1).is_some_and(|s| s == "data" || s == "stringData")
    {
        return Some((
            FacetCode::SecretRotated,
            format!(
                "secret reference {}: {} → {}",
                c.dotted(),
                val(&c.base),
                val(&c.head)
            ),
        ));
    }
    if let Some(i) = pos(p, ENV_CONTAINERS)
        && let Some(var) = p.get(i + 1)
    {
        let prefix = p[..i + 2].to_vec();
        let (in_b, in_h) = (has_prefix(base, &prefix), has_prefix(head, &prefix));
        return Some(match (in_b, in_h) {
            (false, true) => (FacetCode::EnvAdded, format!("env {var} added")),
            (true, false) => (FacetCode::EnvRemoved, format!("env {var} removed")),
            _ => (FacetCode::EnvChanged, format!("env {var} changed")),
        });
    }
    let last = c.last();
    if SCALING_KEYS.contains(&last) {
        return Some((
            FacetCode::InfraScaling,
            format!("{} {} → {}", c.dotted(), val(&c.base), val(&c.head)),
        ));
    }
    if let Some(i) = pos(p, &["resources"])
        && p.get(i + 1)
            .is_some_and(|s| s == "requests" || s == "limits")
        && matches!(last, "cpu" | "memory")
    {
        return Some((
            FacetCode::InfraScaling,
            format!("{} {} → {}", c.dotted(), val(&c.base), val(&c.head)),
        ));
    }
    if matches!(
        last,
        "averageUtilization"
            | "targetCPUUtilizationPercentage"
            | "targetMemoryUtilizationPercentage"
    ) {
        return Some((
            FacetCode::InfraScaling,
            format!("{} {} → {}", c.dotted(), val(&c.base), val(&c.head)),
        ));
    }
    // Images: `image: node:18` or Helm's `image.repository` + `image.tag`.
    let (b, h) = (c.base.as_deref()?, c.head.as_deref()?);
    let (bi, hi) = if last == "image" {
        (b.to_string(), h.to_string())
    } else if last == "tag" && p.len() >= 2 && p[p.len() - 2] == "image" {
        let mut rp = p.clone();
        *rp.last_mut()? = "repository".into();
        (
            format!("{}:{b}", base.get(&Key::of(&rp))?),
            format!("{}:{h}", head.get(&Key::of(&rp))?),
        )
    } else {
        return None;
    };
    image_change(&bi, &hi)
}

/// `runtime-upgrade` for a Node.js (or other runtime) base image major change,
/// `database-engine-upgrade` for PostgreSQL; `None` for anything else (an application image tag
/// bump is a deployment, not something this detector understands).
pub(crate) fn image_change(base: &str, head: &str) -> Option<(FacetCode, String)> {
    let split = |s: &str| -> (String, String) {
        let s = s.split('@').next().unwrap_or(s);
        let (repo, tag) = match s.rfind(':') {
            Some(i) if !s[i..].contains('/') => (&s[..i], &s[i + 1..]),
            _ => (s, "latest"),
        };
        let short = repo.rsplit('/').next().unwrap_or(repo).to_string();
        (short, tag.to_string())
    };
    let ((br, bt), (hr, ht)) = (split(base), split(head));
    let db = |r: &str| matches!(r, "postgres" | "postgresql" | "postgis");
    let runtime = |r: &str| {
        matches!(
            r,
            "node"
                | "deno"
                | "bun"
                | "python"
                | "golang"
                | "openjdk"
                | "eclipse-temurin"
                | "ruby"
                | "rust"
        )
    };
    let (bm, hm) = (
        crate::util::leading_major(&bt),
        crate::util::leading_major(&ht),
    );
    if db(&br) && db(&hr) {
        return (bm != hm && bm.is_some() && hm.is_some()).then(|| {
            (
                FacetCode::DatabaseEngineUpgrade,
                format!("PostgreSQL image {base} → {head}"),
            )
        });
    }
    if runtime(&br) && runtime(&hr) {
        if br != hr {
            return Some((
                FacetCode::RuntimeUpgrade,
                format!("runtime image {base} → {head}"),
            ));
        }
        return (bm != hm && bm.is_some() && hm.is_some()).then(|| {
            (
                FacetCode::RuntimeUpgrade,
                format!("runtime image {base} → {head}"),
            )
        });
    }
    None
}

/// A facet kind the claim rules can produce (for tests).
#[cfg(test)]
fn kinds(f: &Finding) -> Vec<&str> {
    let mut k: Vec<&str> = f.facets.iter().map(|f| f.kind.as_str()).collect();
    k.sort();
    k.dedup();
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MapContents;

    const DEPLOY: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: api
          image: registry.example/api:1.4.0
          resources:
            requests: {cpu: 250m, memory: 256Mi}
            limits: {cpu: 500m, memory: 512Mi}
          env:
            - name: LOG_LEVEL
              value: info
            - name: DATABASE_URL
              valueFrom:
                secretKeyRef: {name: db-v1, key: url}
";

    fn detect(base: &str, head: &str) -> Finding {
        let p = changegate_policy::load_default().policy;
        let c = MapContents::default()
            .with_base("k8s/deploy.yaml", base)
            .with_head("k8s/deploy.yaml", head);
        let files = c.changed_files();
        crate::detectors::testing::detect(
            &InfraK8s,
            &Change {
                files: &files,
                contents: &c,
                settings: &p.classify,
                parses: None,
            },
        )
    }

    #[test]
    fn scaling() {
        let f = detect(
            DEPLOY,
            &DEPLOY
                .replace("replicas: 2", "replicas: 4")
                .replace("memory: 512Mi", "memory: 1Gi"),
        );
        assert_eq!(kinds(&f), vec!["infra-scaling"]);
        assert!(f.explained.contains("k8s/deploy.yaml"));
        let lines: Vec<Option<u32>> = f.facets.iter().map(|x| x.evidence[0].line).collect();
        assert!(
            lines.contains(&Some(6)) && lines.contains(&Some(14)),
            "{lines:?}"
        );
    }

    #[test]
    fn env_secret_log_level() {
        let head = DEPLOY
            .replace("value: info", "value: debug")
            .replace("db-v1", "db-v2")
            .replace(
                "          env:\n",
                "          env:\n            - name: NEW_FLAG\n              value: \"1\"\n",
            );
        let f = detect(DEPLOY, &head);
        assert_eq!(kinds(&f), vec!["env-added", "log-level", "secret-rotated"]);
        let removed = DEPLOY.replace(
            "            - name: LOG_LEVEL\n              value: info\n",
            "",
        );
        assert_eq!(kinds(&detect(DEPLOY, &removed)), vec!["env-removed"]);
    }

    #[test]
    fn app_image_bump_is_not_explained() {
        let f = detect(DEPLOY, &DEPLOY.replace("api:1.4.0", "api:1.5.0"));
        assert!(f.facets.is_empty());
        assert!(!f.explained.contains("k8s/deploy.yaml"));
    }

    #[test]
    fn images() {
        assert_eq!(
            image_change("node:18-alpine", "node:20-alpine").map(|x| x.0.as_str()),
            Some("runtime-upgrade")
        );
        assert_eq!(image_change("node:20.1", "node:20.2"), None);
        assert_eq!(
            image_change("postgres:14", "postgres:15.2").map(|x| x.0.as_str()),
            Some("database-engine-upgrade")
        );
        assert_eq!(
            image_change("docker.io/library/postgres:15", "postgres:15.4"),
            None
        );
    }

    #[test]
    fn helm_templates_are_left_alone() {
        let t = "kind: Deployment\nspec:\n  replicas: {{ .Values.replicaCount }}\n";
        let f = detect(t, &t.replace("replicaCount", "replicas"));
        assert!(f.facets.is_empty() && f.explained.is_empty());
    }

    #[test]
    fn broken_yaml_and_comment_only() {
        let f = detect(DEPLOY, "kind: [\n");
        assert_eq!(kinds(&f), vec!["unparseable"]);
        let f = detect(DEPLOY, &format!("# owned by sre\n{DEPLOY}"));
        assert_eq!(kinds(&f), vec!["docs-only"]);
    }
}
