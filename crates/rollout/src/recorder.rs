//! Recording: every step, every evaluation that changed state, every action and every rollback
//! (with the values that caused it) becomes an [`Event`].
//!
//! [`Recorder`] is the seam for the audit trail: today [`JsonlRecorder`] appends one JSON object
//! per line to a file (default `./changegate-data/rollout.jsonl`); the store crate can implement
//! the same trait to write each event into the audit log in the same transaction as the change's
//! state. Recording failures are errors: the guard does not act unrecorded.

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::Serialize;

use crate::action::ActionResult;
use crate::engine::{Reason, TriggerStatus, Verdict};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// The guard started (spec in `detail`).
    Started,
    /// A state-changing evaluation (new hold reasons, promote, complete, abort).
    Evaluation,
    /// The set-weight action ran for a step.
    Step,
    /// The rollback action ran (automatic).
    Rollback,
    /// A manual rollback was requested (and checked against the rollback authority).
    ManualRollback,
    /// The guard finished (outcome in `verdict`).
    Finished,
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// When.
    pub t: Timestamp,
    /// What.
    pub kind: EventKind,
    /// Change id, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<String>,
    /// Plan name.
    pub plan: String,
    /// Category level.
    pub category: u8,
    /// Step index (0-based), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// Weight, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u8>,
    /// Verdict, for evaluations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Reasons with codes, values and limits.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<Reason>,
    /// Trigger states at the time.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<TriggerStatus>,
    /// Action result, for steps and rollbacks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<ActionResult>,
    /// Free-form details (spec at start, who asked for a manual rollback).
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
    /// Actions were not executed.
    pub dry_run: bool,
}

/// Why an event could not be recorded.
#[derive(Debug, thiserror::Error)]
#[error("cannot record to {path}: {message}")]
pub struct RecordError {
    /// Where.
    pub path: String,
    /// Why.
    pub message: String,
}

/// Where events go. Implement this to send them to the audit trail (async, so a database-backed
/// store can await its transaction).
pub trait Recorder: Send {
    /// Record one event durably before returning.
    fn record(&mut self, event: &Event) -> impl Future<Output = Result<(), RecordError>> + Send;
}

/// Appends events as JSON lines to a file (created with its directory).
#[derive(Debug)]
pub struct JsonlRecorder {
    path: PathBuf,
    file: std::fs::File,
}

impl JsonlRecorder {
    /// Open `path` for appending.
    pub fn open(path: &Path) -> Result<Self, RecordError> {
        let err = |e: std::io::Error| RecordError {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(err)?;
        Ok(JsonlRecorder {
            path: path.to_path_buf(),
            file,
        })
    }
}

impl Recorder for JsonlRecorder {
    async fn record(&mut self, event: &Event) -> Result<(), RecordError> {
        let err = |m: String| RecordError {
            path: self.path.display().to_string(),
            message: m,
        };
        let mut line = serde_json::to_string(event).map_err(|e| err(e.to_string()))?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .map_err(|e| err(e.to_string()))?;
        self.file.sync_data().map_err(|e| err(e.to_string()))
    }
}

/// Keeps events in memory (tests, and callers that forward them elsewhere).
#[derive(Debug, Default, Clone)]
pub struct MemoryRecorder {
    /// Recorded events.
    pub events: Vec<Event>,
}

impl Recorder for MemoryRecorder {
    async fn record(&mut self, event: &Event) -> Result<(), RecordError> {
        self.events.push(event.clone());
        Ok(())
    }
}
