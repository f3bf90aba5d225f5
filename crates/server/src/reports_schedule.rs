//! The reports the server generates on its schedule (issue 17, "generated on a schedule (first
//! day of the month / quarter) by the server and notified"; ADR 0029).
//!
//! On the first day of a month the previous month's audit report is due, on the first day of a
//! quarter the previous quarter's review too. [`run_once`] generates every due report that is not
//! stored yet: the store computes it from the log, appends its `report.generated` event and
//! stores it under its name in one transaction, and the notification router queues the
//! `report-generated` notification that event means for the channels the policy routes it to
//! (the seed: `reviewers`), in the same transaction. The name is the table's primary key, so a
//! report is generated once however many replicas run this and however often: a second
//! generation conflicts and rolls back, event and notifications included.
//!
//! Time: the due reports are those of the latest *completed* month and quarter by the state's
//! clock, so a server that was down on the first of the month generates the missed report when
//! it starts (the loop runs at once, then every [`ScheduleConfig::poll`]). A period that ended
//! with nothing recorded before its end is not generated (a new server does not report on months it
//! never saw).

use std::time::Duration;

use changegate_report::{Period, ReportKind, Settings, report_name};
use changegate_store::StoreError;
use changegate_store::report::Generation;

use crate::AppState;

/// Who the scheduled generation is recorded as.
pub const ACTOR: &str = "integration:changegate-reports";

/// How the scheduler runs.
#[derive(Debug, Clone)]
pub struct ScheduleConfig {
    /// Look for due reports this often.
    pub poll: Duration,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            poll: Duration::from_secs(60),
        }
    }
}

/// The reports due at `now`: the latest completed month and the latest completed quarter.
pub fn due(now: jiff::Timestamp) -> Vec<Period> {
    [ReportKind::Monthly, ReportKind::Quarterly]
        .into_iter()
        .map(|k| Period::containing(k, now).previous())
        .collect()
}

/// Generate every due report not generated yet; the names of those generated now.
pub async fn run_once(state: &AppState) -> Result<Vec<String>, StoreError> {
    let store = state.db.store();
    let settings = Settings::from_policy(&state.policy);
    let now = state.now();
    let mut out = Vec::new();
    for period in due(now) {
        let name = report_name(period.kind(), &period.to_string());
        if store.stored_report(&name).await?.is_some() {
            continue;
        }
        // Nothing recorded before the period's end: the log did not exist then.
        let before = store
            .events(&changegate_store::EventFilter {
                until: Some(period.end()),
                limit: Some(1),
                ..Default::default()
            })
            .await?;
        if before.is_empty() {
            continue;
        }
        match store
            .generate_report(&period, &settings, ACTOR, period.end())
            .await?
        {
            Generation::Generated(r, a) => {
                tracing::info!(report = %name, digest = %r.digest, seq = a.seq, "scheduled report generated");
                out.push(name);
            }
            Generation::Exists => {}
        }
    }
    Ok(out)
}

/// Start the scheduler: runs at once (a missed first-of-month run happens now), then every
/// `cfg.poll`, until the task is aborted.
pub fn spawn(state: AppState, cfg: ScheduleConfig) -> tokio::task::JoinHandle<()> {
    changegate_store::spawn_background(async move {
        loop {
            if let Err(e) = run_once(&state).await {
                tracing::warn!(error = %e, "scheduled reports: generation failed");
            }
            tokio::time::sleep(cfg.poll).await;
        }
    })
}
