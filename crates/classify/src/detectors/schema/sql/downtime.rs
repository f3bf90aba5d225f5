//! Declared downtime: a migration states how long it takes the application down with a comment
//! `-- changegate: downtime=10m` (durations as the policy writes them: `s`, `m`, `h`, `d`). A
//! declared downtime above the `downtime_threshold` of the policy row that lists `schema-downtime`
//! ("Migration requiring downtime (>5 min)") is a `schema-downtime` facet; one at or below it adds
//! nothing. A value that does not parse is `unparseable` (fail closed): an unreadable estimate is
//! not taken as "no downtime".

use changegate_policy::Dur;
use changegate_policy::facets::FacetCode;

use super::ID;
use crate::facet::{evidence_line, facet, unparseable_at};
use crate::{Facet, Side};

/// The annotation's marker.
pub(super) const MARKER: &str = "changegate:";

/// Facets of every downtime annotation of `head`.
pub(super) fn declared(path: &str, head: &str, threshold: Option<&Dur>) -> Vec<Facet> {
    let mut out = Vec::new();
    for (n, line) in head.lines().enumerate() {
        let Some(comment) = line.trim_start().strip_prefix("--") else {
            continue;
        };
        let Some(rest) = comment.trim_start().strip_prefix(MARKER) else {
            continue;
        };
        let Some(value) = rest.trim().strip_prefix("downtime=") else {
            continue;
        };
        let line_no = u32::try_from(n + 1).unwrap_or(u32::MAX);
        let value = value.trim();
        match value.parse::<Dur>() {
            Err(e) => out.push(unparseable_at(
                ID,
                path,
                Side::Head,
                Some(line_no),
                "downtime annotation",
                &format!("`downtime={value}`: {e}"),
            )),
            Ok(d) => {
                let above = match threshold {
                    Some(t) => d.get() > t.get(),
                    None => d.get().is_positive(),
                };
                if above {
                    let of = threshold
                        .map(|t| format!("the policy's {t} threshold"))
                        .unwrap_or_else(|| "zero (no threshold in the policy)".into());
                    out.push(facet(
                        ID,
                        FacetCode::SchemaDowntime,
                        format!("migration declares {d} of downtime, above {of}"),
                        vec![evidence_line(path, Side::Head, Some(head), Some(line_no))],
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::M;
    use crate::detectors::schema::sql::Sql;
    use crate::detectors::testing::{default_settings, kinds, run_with};

    fn with(sql: &str, threshold: Option<&str>) -> Vec<String> {
        let mut s = default_settings();
        s.downtime_threshold = threshold.map(|t| t.parse().unwrap());
        kinds(&run_with(&Sql, &s, &[(M, None, Some(sql))]))
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn declared_downtime_above_the_threshold_is_schema_downtime() {
        let sql = "-- changegate: downtime=10m\nALTER TABLE users ADD COLUMN bio TEXT;\n";
        assert_eq!(
            with(sql, Some("5m")),
            ["schema-column-added-nullable", "schema-downtime"]
        );
        assert_eq!(with(sql, Some("15m")), ["schema-column-added-nullable"]);
        let at = "-- changegate: downtime=5m\nALTER TABLE users ADD COLUMN bio TEXT;\n";
        assert_eq!(
            with(at, Some("5m")),
            ["schema-column-added-nullable"],
            "> 5 min, not >="
        );
    }

    #[test]
    fn an_unreadable_estimate_fails_closed() {
        let sql = "-- changegate: downtime=a while\nALTER TABLE users ADD COLUMN bio TEXT;\n";
        assert_eq!(
            with(sql, Some("5m")),
            ["schema-column-added-nullable", "unparseable"]
        );
    }
}
