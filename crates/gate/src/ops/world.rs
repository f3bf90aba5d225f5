//! Applying a [`WorldOp`] to the shared world.

use changegate_policy::Policy;
use jiff::Timestamp;

use super::{OpError, WorldOp};
use crate::model::{Announcement, Incident, WorldState};

/// Apply a command to the world at `at`.
pub fn apply_world(
    policy: &Policy,
    world: &mut WorldState,
    op: &WorldOp,
    at: Timestamp,
) -> Result<(), OpError> {
    match op {
        WorldOp::OpenIncident {
            id,
            severity,
            commander,
            title,
            kind,
            cvss,
        } => {
            let allowed = &policy.emergency.incident_severities;
            if !allowed.contains(severity) {
                return Err(OpError::InvalidSeverity {
                    severity: severity.clone(),
                    allowed: allowed.clone(),
                });
            }
            let kinds = &policy.emergency.incident_kinds;
            if let Some(k) = kind
                && !kinds.contains(k)
            {
                return Err(OpError::InvalidIncidentKind {
                    given: k.clone(),
                    allowed: kinds.clone(),
                });
            }
            if world.incident(id).is_some() {
                return Err(OpError::DuplicateIncident { id: id.clone() });
            }
            world.incidents.push(Incident {
                id: id.clone(),
                severity: severity.clone(),
                title: title.clone(),
                opened_at: at,
                resolved_at: None,
                commander: commander.clone(),
                kind: kind.clone(),
                cvss: *cvss,
            });
            Ok(())
        }
        WorldOp::ResolveIncident { id } => {
            let inc = world
                .incidents
                .iter_mut()
                .find(|i| i.id == *id)
                .ok_or_else(|| OpError::UnknownIncident { id: id.clone() })?;
            inc.resolved_at.get_or_insert(at);
            Ok(())
        }
        WorldOp::UpdateIncident {
            id,
            severity,
            title,
            commander,
            clear_commander,
            reopen,
        } => {
            if let Some(severity) = severity {
                let allowed = &policy.emergency.incident_severities;
                if !allowed.contains(severity) {
                    return Err(OpError::InvalidSeverity {
                        severity: severity.clone(),
                        allowed: allowed.clone(),
                    });
                }
            }
            let inc = world
                .incidents
                .iter_mut()
                .find(|i| i.id == *id)
                .ok_or_else(|| OpError::UnknownIncident { id: id.clone() })?;
            if let Some(s) = severity {
                inc.severity = s.clone();
            }
            if let Some(t) = title {
                inc.title = t.clone();
            }
            if *clear_commander {
                inc.commander = None;
            }
            if let Some(c) = commander {
                inc.commander = Some(c.clone());
            }
            if *reopen {
                inc.resolved_at = None;
            }
            Ok(())
        }
        WorldOp::Announce {
            id,
            window_start,
            window_end,
            channels,
        } => {
            world.announcements.push(Announcement {
                id: id.clone(),
                window_start: *window_start,
                window_end: *window_end,
                announced_at: at,
                channels: channels.clone(),
                link: None,
                sent: Vec::new(),
            });
            Ok(())
        }
        WorldOp::SetTeam { name, members } => {
            let name = name.strip_prefix("team:").unwrap_or(name).to_string();
            if members.is_empty() {
                world.teams.remove(&name);
            } else {
                world.teams.insert(name, members.clone());
            }
            Ok(())
        }
        WorldOp::SetAlias { alias, person } => {
            let alias = alias.to_lowercase();
            match person {
                Some(p) => world.aliases.insert(alias, p.clone()),
                None => world.aliases.remove(&alias),
            };
            Ok(())
        }
    }
}

#[cfg(test)]
mod people_ops_tests {
    use super::*;

    #[test]
    fn incidents_are_updated_and_reopened() {
        let policy = changegate_policy::load_default().policy;
        let mut w = WorldState::default();
        let at: Timestamp = "2026-03-10T10:00:00Z".parse().unwrap();
        let open = WorldOp::OpenIncident {
            id: "PD-1".into(),
            severity: "P3".into(),
            commander: Some("dave".into()),
            title: "slow".into(),
            kind: None,
            cvss: None,
        };
        apply_world(&policy, &mut w, &open, at).unwrap();
        apply_world(
            &policy,
            &mut w,
            &WorldOp::ResolveIncident { id: "PD-1".into() },
            at,
        )
        .unwrap();
        let update = WorldOp::UpdateIncident {
            id: "PD-1".into(),
            severity: Some("P1".into()),
            title: None,
            commander: None,
            clear_commander: true,
            reopen: true,
        };
        apply_world(&policy, &mut w, &update, at).unwrap();
        let inc = w.incident("PD-1").unwrap();
        assert_eq!(
            (inc.severity.as_str(), inc.commander.as_deref()),
            ("P1", None)
        );
        assert!(inc.active_at(at));
        let bad = WorldOp::UpdateIncident {
            id: "PD-1".into(),
            severity: Some("SEV1".into()),
            title: None,
            commander: None,
            clear_commander: false,
            reopen: false,
        };
        assert!(matches!(
            apply_world(&policy, &mut w, &bad, at),
            Err(OpError::InvalidSeverity { .. })
        ));
        let unknown = WorldOp::UpdateIncident {
            id: "PD-2".into(),
            severity: None,
            title: None,
            commander: None,
            clear_commander: false,
            reopen: true,
        };
        assert!(matches!(
            apply_world(&policy, &mut w, &unknown, at),
            Err(OpError::UnknownIncident { .. })
        ));
    }

    #[test]
    fn teams_and_aliases_are_set_and_removed() {
        let policy = changegate_policy::load_default().policy;
        let mut w = WorldState::default();
        let at: Timestamp = "2026-03-10T10:00:00Z".parse().unwrap();
        let set = WorldOp::SetTeam {
            name: "team:qa".into(),
            members: vec!["carl".into()],
        };
        apply_world(&policy, &mut w, &set, at).unwrap();
        assert_eq!(w.teams["qa"], ["carl"]);
        let alias = WorldOp::SetAlias {
            alias: "Carl@Example.com".into(),
            person: Some("carl".into()),
        };
        apply_world(&policy, &mut w, &alias, at).unwrap();
        assert_eq!(w.aliases["carl@example.com"], "carl");
        apply_world(
            &policy,
            &mut w,
            &WorldOp::SetTeam {
                name: "qa".into(),
                members: vec![],
            },
            at,
        )
        .unwrap();
        apply_world(
            &policy,
            &mut w,
            &WorldOp::SetAlias {
                alias: "carl@example.com".into(),
                person: None,
            },
            at,
        )
        .unwrap();
        assert!(w.teams.is_empty() && w.aliases.is_empty());
    }
}
