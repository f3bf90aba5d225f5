//! The gate's decision corpus (`crates/gate/tests/cases`), replayed through the HTTP API of a
//! real server on both SQLite and PostgreSQL: every command becomes a request, every expected
//! decision is checked on the server's answer with the very same `Expect::check`.

use changegate_gate::corpus::{Case, case_policy};
use changegate_gate::ops::{ChangeOp, WorldOp};
use changegate_gate::{Decision, Status};
use changegate_testkit::server::{Backend, TestServer, people};
use serde_json::{Value, json};

/// Whether a case's initial state can be built through the API: a change (fresh, or imported with
/// its history), teams and aliases. Incidents and announcements must come from steps.
fn replayable(_case: &Case) -> bool {
    true
}

fn fresh(case: &Case) -> bool {
    let s = &case.state;
    s.status == Status::Draft
        && s.history.is_empty()
        && s.approvals.is_empty()
        && s.attestations.is_empty()
        && s.lead_items.is_empty()
        && s.remediates.is_empty()
        && s.emergency.is_none()
        && s.exception.is_none()
        && s.rollback.is_empty()
        && s.duties.is_empty()
}

async fn world_op(srv: &TestServer, op: &WorldOp) -> (u16, Value) {
    let a = &srv.admin;
    match op {
        WorldOp::OpenIncident { id, severity, commander, title, kind, cvss } => {
            srv.post("/api/v1/incidents", a, &json!({"id": id, "severity": severity, "commander": commander, "title": title, "kind": kind, "cvss": cvss})).await
        }
        WorldOp::ResolveIncident { id } => srv.post(&format!("/api/v1/incidents/{id}/resolve"), a, &json!({})).await,
        // Only the webhook worker updates incidents (no route does): no case may use it.
        WorldOp::UpdateIncident { .. } => panic!("update-incident has no route; the corpus cannot replay it"),
        WorldOp::Announce { id, window_start, window_end, channels } => {
            srv.post(
                "/api/v1/announcements",
                a,
                &json!({"id": id, "window_start": window_start, "window_end": window_end, "channels": channels}),
            )
            .await
        }
        WorldOp::SetTeam { name, members } => srv.put(&format!("/api/v1/teams/{name}"), a, &json!({"members": members})).await,
        WorldOp::SetAlias { alias, person } => srv.put(&format!("/api/v1/aliases/{alias}"), a, &json!({"person": person})).await,
    }
}

async fn replay(backend: Backend, name: &str, case: &Case) -> Result<(), String> {
    let policy = case_policy(&people(), &case.policy)?;
    let first = case
        .steps
        .first()
        .map(|s| s.at)
        .unwrap_or_else(jiff::Timestamp::now);
    let srv = TestServer::start(backend, policy, first).await;
    let admin = srv.admin.clone();
    for (team, members) in &case.world.teams {
        let (st, body) = srv
            .put(
                &format!("/api/v1/teams/{team}"),
                &admin,
                &json!({"members": members}),
            )
            .await;
        if st != 200 {
            return Err(format!("set team {team}: {st} {body}"));
        }
    }
    for inc in &case.world.incidents {
        srv.set_now(inc.opened_at);
        let (st, body) = world_op(
            &srv,
            &WorldOp::OpenIncident {
                id: inc.id.clone(),
                severity: inc.severity.clone(),
                commander: inc.commander.clone(),
                title: inc.title.clone(),
                kind: inc.kind.clone(),
                cvss: inc.cvss,
            },
        )
        .await;
        if st != 201 {
            return Err(format!("open incident {}: {st} {body}", inc.id));
        }
        if let Some(at) = inc.resolved_at {
            srv.set_now(at);
            world_op(&srv, &WorldOp::ResolveIncident { id: inc.id.clone() }).await;
        }
    }
    for a in &case.world.announcements {
        srv.set_now(a.announced_at);
        let op = WorldOp::Announce {
            id: a.id.clone(),
            window_start: a.window_start,
            window_end: a.window_end,
            channels: a.channels.clone(),
        };
        let (st, body) = world_op(&srv, &op).await;
        if st != 201 {
            return Err(format!("announce {}: {st} {body}", a.id));
        }
    }
    for (alias, person) in &case.world.aliases {
        let (st, body) = srv
            .put(
                &format!("/api/v1/aliases/{alias}"),
                &admin,
                &json!({"person": person}),
            )
            .await;
        if st != 200 {
            return Err(format!("set alias {alias}: {st} {body}"));
        }
    }
    let c = &case.state.change;
    let (st, body) = if !fresh(case) {
        srv.post(
            "/api/v1/changes/import",
            &admin,
            &serde_json::to_value(&case.state).unwrap(),
        )
        .await
    } else {
        srv.post(
            "/api/v1/changes",
            &admin,
            &json!({
                "id": c.id, "repository": c.repository, "title": c.title, "pr_link": c.pr_link, "ticket": c.ticket,
                "base_commit": c.base_commit, "head_commit": c.head_commit, "authors": c.authors,
                "co_authors": c.co_authors, "last_pusher": c.last_pusher, "classification": c.classification,
                "requested_deploy_at": c.requested_deploy_at, "deploy_duration": c.deploy_duration, "maintenance": c.maintenance,
            }),
        )
        .await
    };
    if st != 201 {
        return Err(format!("create: {st} {body}"));
    }
    let id = &c.id;
    for (i, step) in case.steps.iter().enumerate() {
        let here = format!(
            "{name} [{backend:?}] step {} at {}{}",
            i + 1,
            step.at,
            step.note
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        );
        srv.set_now(step.at);
        let result = match (&step.change, &step.world) {
            (Some(op), None) => Some(
                srv.post(
                    &format!("/api/v1/changes/{id}/ops"),
                    &admin,
                    &serde_json::to_value(op).unwrap(),
                )
                .await,
            ),
            (None, Some(op)) => Some(world_op(&srv, op).await),
            _ => None,
        };
        if let Some((st, body)) = result {
            let ok = (200..300).contains(&st);
            match (&step.error, ok) {
                (None, false) => return Err(format!("{here}: refused with {st} {body}")),
                (Some(want), true) => {
                    return Err(format!("{here}: expected error {want}, got {st}"));
                }
                (Some(want), false) if body["code"] != want.as_str() => {
                    return Err(format!("{here}: expected error {want}, got {st} {body}"));
                }
                _ => {}
            }
            if matches!(step.change, Some(ChangeOp::Transition { .. }))
                && !ok
                && st != 409
                && st != 422
            {
                return Err(format!(
                    "{here}: a refused transition must be 409/422, got {st}"
                ));
            }
        }
        if let Some(want) = step.status {
            let (_, body) = srv.get(&format!("/api/v1/changes/{id}"), &admin).await;
            if body["status"] != json!(want.as_str()) {
                return Err(format!("{here}: status {} expected {want}", body["status"]));
            }
        }
        if let Some(exp) = &step.decide {
            let (st, body) = srv
                .get(
                    &format!("/api/v1/changes/{id}/decision?at={}", step.at),
                    &admin,
                )
                .await;
            if st != 200 {
                return Err(format!("{here}: decision {st} {body}"));
            }
            let d: Decision = serde_json::from_value(body.clone())
                .map_err(|e| format!("{here}: decision JSON: {e}"))?;
            exp.check(&d).map_err(|e| format!("{here}: {e}"))?;
        }
        if let Some(want) = &step.overdue {
            let (_, body) = srv.get("/api/v1/overdue", &admin).await;
            let got: Vec<String> = body["overdue"][id.as_str()]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|r| r["code"].as_str().unwrap_or_default().to_string())
                        .collect()
                })
                .unwrap_or_default();
            if got != want.iter().map(|c| c.to_string()).collect::<Vec<_>>() {
                return Err(format!(
                    "{here}: overdue {got:?}, expected {want:?}; {body}"
                ));
            }
        }
    }
    Ok(())
}

async fn replay_all(backend: Backend) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../gate/tests/cases");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let (mut ran, mut skipped, mut failures) = (0, 0, Vec::new());
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with('_') {
            continue;
        }
        let case: Case = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if !replayable(&case) {
            eprintln!("skipping {name}: starts from recorded history");
            skipped += 1;
            continue;
        }
        ran += 1;
        if let Err(e) = replay(backend, &name, &case).await {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        ran >= 23 && skipped == 0,
        "only {ran} cases replayed ({skipped} skipped)"
    );
    eprintln!(
        "{backend:?}: {ran} corpus cases replayed through HTTP, {skipped} start from recorded history"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_over_http_sqlite() {
    replay_all(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_over_http_postgres() {
    replay_all(Backend::Postgres).await;
}
