//! The server's persistence: change documents with compare-and-swap versions, the shared world
//! document, API tokens and idempotency keys. Every write commits with its audit event in one
//! transaction.
//!
//! The server holds it as `Arc<dyn ServerStore>`: [`ServerStore`] is the one seam between the
//! HTTP layer and SQL, so a feature that needs persistence (webhook deliveries, the notification
//! outbox, reports, sessions) adds a method here, its SQL in a file beside this one, and a test in
//! `tests/server_store.rs` that runs on SQLite and PostgreSQL. [`Store`] implements it.

mod changes;

pub use changes::changes_at_commit_sql;
mod deliveries;
pub(crate) use deliveries::InsertQueue;
mod github;
mod notifications;
pub(crate) use notifications::queue as queue_notifications;
mod rollouts;
mod sessions;
mod tokens;
pub(crate) use tokens::token_state;
mod world;

pub use deliveries::{
    Completion, Delivery, DeliverySource, DeliveryStatus, NewDelivery, Received, WorldWrite,
};
pub use github::{GithubGate, GithubGateUpdate, GithubPublication, NewGithubGate};
pub use notifications::{
    Finished, NewNotification, NoticeWrite, Notification, NotificationRouter, NotificationStatus,
};
pub use rollouts::{NewRollout, RolloutRow, RolloutSaved, RolloutStart, RolloutWrite};

use changegate_audit::{AuditEvent, StateRef};
use changegate_gate::{ChangeState, WorldState};
pub use futures_util::future::BoxFuture;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::{Appended, Backend, Result, Store};

/// A value with the version it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// Its version (incremented by each write).
    pub version: i64,
}

/// A change with its version, and the world, read together.
pub type ChangeAndWorld = (Versioned<ChangeState>, WorldState);

/// A row of the change listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeSummary {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Status (`draft`, `in-review`, …).
    pub status: String,
    /// Category level.
    pub category: i64,
    /// Version.
    pub version: i64,
    /// Last write (RFC 3339).
    pub updated_at: String,
}

/// What a token stands for (column `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenKind {
    /// Acts only as its person.
    Person,
    /// A named integration (a CI job, a deploy pipeline): may do what its scopes name.
    Integration,
    /// May act on behalf of anyone and change shared state.
    Admin,
}

impl TokenKind {
    /// The stored name: `person`, `integration`, `admin`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TokenKind::Person => "person",
            TokenKind::Integration => "integration",
            TokenKind::Admin => "admin",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<TokenKind> {
        [TokenKind::Person, TokenKind::Integration, TokenKind::Admin]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for TokenKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored API token (only the digest of its secret), as authentication reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// Digest of the secret.
    pub digest: String,
    /// The person (person and admin tokens) or the integration's name.
    pub person: String,
    /// Admin (`kind == TokenKind::Admin`).
    pub admin: bool,
    /// Revoked.
    pub revoked: bool,
    /// What it stands for.
    pub kind: TokenKind,
    /// Scope names (integration tokens), as stored.
    pub scopes: Vec<String>,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
}

/// A token as `token list` shows it: never the secret or its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// Public id.
    pub id: String,
    /// What it stands for.
    pub kind: TokenKind,
    /// The person, or the integration's name.
    pub name: String,
    /// Scope names.
    pub scopes: Vec<String>,
    /// When it was issued (RFC 3339).
    pub created_at: String,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// When it was revoked, if it was (RFC 3339).
    pub revoked_at: Option<String>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
}

/// A token to store: its public id and the digest of its secret.
#[derive(Debug, Clone, Copy)]
pub struct NewTokenRow<'a> {
    /// Lookup key.
    pub id: &'a str,
    /// Digest of the secret.
    pub digest: &'a str,
    /// What it stands for.
    pub kind: TokenKind,
    /// The person it acts as, or the integration's name.
    pub person: &'a str,
    /// Scope names (integration tokens).
    pub scopes: &'a [String],
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// Who issued it: the actor of its `token.created` event (`changegate` for the host's CLI).
    pub issued_by: &'a str,
}

/// A dashboard sign-in session (table `dashboard_session`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// SHA-256 of the cookie's secret, hex (the cookie's secret itself is never stored).
    pub id: String,
    /// The API token the session was opened with (re-checked on every request); empty for a
    /// session opened with a GitHub identity.
    pub token_id: String,
    /// The person (or the integration actor) the token stands for.
    pub person: String,
    /// The per-session CSRF token every form carries.
    pub csrf: String,
    /// Opened, unix microseconds.
    pub created_us: i64,
    /// Expires, unix microseconds.
    pub expires_us: i64,
    /// The GitHub identity (login, user id) the session was opened with, for a GitHub sign-in.
    pub github: Option<(String, i64)>,
}

/// A change as [`ServerStore::change_rows_by_id`] reads it: its summary row and its document.
pub type ChangeRow = (ChangeSummary, Versioned<ChangeState>);

/// What [`ServerStore::revoke_token`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// Revoked now (audited as `token.revoked`).
    Revoked,
    /// It was revoked before; nothing written.
    AlreadyRevoked,
    /// No token has this id; nothing written.
    NotFound,
}

/// Everything the server persists. Object safe (methods return boxed futures), so the server
/// holds `Arc<dyn ServerStore>`. Writes take the audit event that records them and commit both
/// in one transaction.
pub trait ServerStore: Send + Sync + std::fmt::Debug {
    /// Which database.
    fn backend(&self) -> Backend;

    /// The store's clock.
    fn now(&self) -> Timestamp;

    /// The audit log every write appends to (head, verification, proofs).
    fn audit_log(&self) -> &Store;

    /// A trivial query: the database answers.
    fn ping(&self) -> BoxFuture<'_, Result<()>>;

    /// How many tokens exist.
    fn token_count(&self) -> BoxFuture<'_, Result<i64>>;

    /// Store a new token, audited as `token.created` (without the secret).
    fn create_token<'a>(&'a self, token: NewTokenRow<'a>) -> BoxFuture<'a, Result<()>>;

    /// A token by id.
    fn find_token<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<TokenRow>>>;

    /// Every token, oldest first (without secrets or digests).
    fn list_tokens(&self) -> BoxFuture<'_, Result<Vec<TokenInfo>>>;

    /// Revoke a token, audited as `token.revoked` by `by`.
    fn revoke_token<'a>(&'a self, id: &'a str, by: &'a str) -> BoxFuture<'a, Result<Revocation>>;

    /// A change and its version.
    fn change<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Versioned<ChangeState>>>>;

    /// A change and the world, read together in one query (the decision endpoint's hot path).
    fn change_and_world<'a>(&'a self, id: &'a str)
    -> BoxFuture<'a, Result<Option<ChangeAndWorld>>>;

    /// The id of the change created with this idempotency key by this person, if any.
    fn idempotent<'a>(
        &'a self,
        person: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>>>;

    /// Insert a new change (version 1) with its audit event and, when given, its idempotency key
    /// `(person, key)`. When a concurrent request with the same key won, returns what it created
    /// and writes nothing; when a change with this id exists (a concurrent create with the same
    /// id won), fails with [`crate::StoreError::ChangeExists`] and writes nothing.
    fn create_change<'a>(
        &'a self,
        state: &'a ChangeState,
        event: AuditEvent,
        idempotency: Option<(&'a str, &'a str)>,
    ) -> BoxFuture<'a, Result<Versioned<ChangeState>>>;

    /// Write a change if it is still at version `expected` (compare-and-swap), with its audit
    /// event. `None` when another writer got there first (nothing written).
    fn update_change<'a>(
        &'a self,
        id: &'a str,
        expected: i64,
        state: &'a ChangeState,
        event: AuditEvent,
    ) -> BoxFuture<'a, Result<Option<Versioned<ChangeState>>>>;

    /// Every change, newest first.
    fn list_changes(&self) -> BoxFuture<'_, Result<Vec<ChangeSummary>>>;

    /// The shared world document (incidents, announcements, teams, aliases).
    fn world(&self) -> BoxFuture<'_, Result<Versioned<WorldState>>>;

    /// Write the world if it is still at version `expected`, with its audit event.
    fn update_world<'a>(
        &'a self,
        expected: i64,
        world: &'a WorldState,
        event: AuditEvent,
    ) -> BoxFuture<'a, Result<Option<Versioned<WorldState>>>>;

    /// Append an event on its own (a recorded gate decision).
    fn record(&self, event: AuditEvent) -> BoxFuture<'_, Result<Appended>>;

    // Webhook deliveries. Default bodies refuse, so a store that does not keep deliveries (a test
    // stand-in) need not implement them.

    /// Store an incoming webhook delivery (pending), unless one with the same source and
    /// delivery id exists: then nothing is stored and the earlier row is named.
    fn insert_delivery<'a>(&'a self, d: NewDelivery<'a>) -> BoxFuture<'a, Result<Received>> {
        let _ = d;
        unsupported()
    }

    /// Lease up to `limit` due pending deliveries to `owner` until `now + lease` (oldest first;
    /// never one with an older pending delivery of the same subject), counting an attempt each.
    fn claim_deliveries<'a>(
        &'a self,
        owner: &'a str,
        now: Timestamp,
        lease: SignedDuration,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<Delivery>>> {
        let _ = (owner, now, lease, limit);
        unsupported()
    }

    /// Mark a leased delivery done with what it did, and commit the world write it causes (with
    /// its audit event) in the same transaction.
    fn complete_delivery<'a>(
        &'a self,
        row: i64,
        owner: &'a str,
        outcome: &'a serde_json::Value,
        at: Timestamp,
        write: Option<WorldWrite<'a>>,
    ) -> BoxFuture<'a, Result<Completion>> {
        let _ = (row, owner, outcome, at, write);
        unsupported()
    }

    /// Record a failed attempt of a leased delivery: due again at `retry_at`, or `failed` when
    /// `None`. False when the worker no longer holds it.
    fn fail_delivery<'a>(
        &'a self,
        row: i64,
        owner: &'a str,
        error: &'a str,
        at: Timestamp,
        retry_at: Option<Timestamp>,
    ) -> BoxFuture<'a, Result<bool>> {
        let _ = (row, owner, error, at, retry_at);
        unsupported()
    }

    /// The pending deliveries of `source` and `subject` after row `row` (arrival order, at most
    /// `limit`) that no worker holds at `now`: what a worker holding `row` may coalesce with it.
    fn pending_after<'a>(
        &'a self,
        source: DeliverySource,
        subject: &'a str,
        row: i64,
        now: Timestamp,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<Delivery>>> {
        let _ = (source, subject, row, now, limit);
        unsupported()
    }

    /// Mark several deliveries `done` in one transaction, each with its outcome, and append
    /// `event` (when given) in it: `leased` only while `owner` holds it, the others only while
    /// pending and unleased (a worker coalescing deliveries of one subject). `LeaseLost` (and
    /// nothing written) otherwise.
    fn complete_deliveries<'a>(
        &'a self,
        owner: &'a str,
        leased: i64,
        rows: &'a [(i64, serde_json::Value)],
        at: Timestamp,
        event: Option<AuditEvent>,
    ) -> BoxFuture<'a, Result<Completion>> {
        let _ = (owner, leased, rows, at, event);
        unsupported()
    }

    /// Deliveries, newest first, optionally of one status and source.
    fn list_deliveries(
        &self,
        status: Option<DeliveryStatus>,
        source: Option<DeliverySource>,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<Delivery>>> {
        let _ = (status, source, limit);
        unsupported()
    }

    /// Make a failed delivery pending again (due at `at`), audited as `delivery.retried` by
    /// `by`. False when no failed delivery has this row id.
    fn retry_delivery<'a>(
        &'a self,
        row: i64,
        by: &'a str,
        at: Timestamp,
    ) -> BoxFuture<'a, Result<bool>> {
        let _ = (row, by, at);
        unsupported()
    }

    // The notification outbox. Default bodies refuse, like the deliveries'.

    /// Lease up to `limit` due pending notifications to `owner` until `now + lease` (earliest due
    /// first), counting an attempt each.
    fn claim_notifications<'a>(
        &'a self,
        owner: &'a str,
        now: Timestamp,
        lease: SignedDuration,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<Notification>>> {
        let _ = (owner, now, lease, limit);
        no_outbox()
    }

    /// Mark a leased notification `sent` or `cancelled` with the receiver's receipt and, when
    /// given, the notice write it causes (a compare-and-swap with its audit event), in one
    /// transaction, only while `owner` holds the lease.
    fn finish_notification<'a>(
        &'a self,
        id: i64,
        owner: &'a str,
        status: NotificationStatus,
        receipt: &'a serde_json::Value,
        at: Timestamp,
        write: Option<NoticeWrite<'a>>,
    ) -> BoxFuture<'a, Result<Finished>> {
        let _ = (id, owner, status, receipt, at, write);
        no_outbox()
    }

    /// Record a failed attempt of a leased notification: due again at `retry_at`, or `dead` when
    /// `None`. False when the worker no longer holds it.
    fn fail_notification<'a>(
        &'a self,
        id: i64,
        owner: &'a str,
        error: &'a str,
        at: Timestamp,
        retry_at: Option<Timestamp>,
    ) -> BoxFuture<'a, Result<bool>> {
        let _ = (id, owner, error, at, retry_at);
        no_outbox()
    }

    /// Notifications, newest first, optionally of one status and one subject.
    fn list_notifications<'a>(
        &'a self,
        status: Option<NotificationStatus>,
        subject: Option<&'a str>,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<Notification>>> {
        let _ = (status, subject, limit);
        no_outbox()
    }

    /// Make a dead notification pending again (due at `at`), audited as `notification.retried`
    /// by `by`. False when no dead notification has this id.
    fn retry_notification<'a>(
        &'a self,
        id: i64,
        by: &'a str,
        at: Timestamp,
    ) -> BoxFuture<'a, Result<bool>> {
        let _ = (id, by, at);
        no_outbox()
    }

    /// Start a rollout: the change's compare-and-swap (`expected` version → `state`, its `start`
    /// transition), the new rollout row and the audit event, in one transaction. (The default:
    /// a store without rollouts refuses.)
    fn start_rollout<'a>(
        &'a self,
        _rollout: NewRollout<'a>,
        _expected: i64,
        _state: &'a ChangeState,
        _event: AuditEvent,
    ) -> BoxFuture<'a, Result<RolloutStart>> {
        Box::pin(async { Err(no_rollouts()) })
    }

    /// A rollout by id.
    fn rollout<'a>(&'a self, _id: &'a str) -> BoxFuture<'a, Result<Option<RolloutRow>>> {
        Box::pin(async { Err(no_rollouts()) })
    }

    /// Every rollout of a change, oldest first.
    fn change_rollouts<'a>(
        &'a self,
        _change_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<RolloutRow>>> {
        Box::pin(async { Err(no_rollouts()) })
    }

    /// Ids of active rollouts due at `now_us` whose lease is free, expired or `owner`'s (at most
    /// `limit`).
    fn due_rollouts<'a>(
        &'a self,
        _now_us: i64,
        _owner: &'a str,
        _limit: i64,
    ) -> BoxFuture<'a, Result<Vec<String>>> {
        Box::pin(async { Err(no_rollouts()) })
    }

    /// Take or renew the lease of an active rollout until `until_us`: granted when it is free,
    /// expired (`lease_until < now_us`) or already `owner`'s.
    fn lease_rollout<'a>(
        &'a self,
        _id: &'a str,
        _owner: &'a str,
        _now_us: i64,
        _until_us: i64,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async { Err(no_rollouts()) })
    }

    /// Give the lease up (another replica may take the rollout at once).
    fn release_rollout<'a>(&'a self, _id: &'a str, _owner: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Err(no_rollouts()) })
    }

    /// Write a rollout row (if still at its version and `owner` holds the lease), with its audit
    /// event and, when given, the change's compare-and-swap `(id, expected, state)`, in one
    /// transaction.
    fn save_rollout<'a>(
        &'a self,
        _write: RolloutWrite<'a>,
        _event: Option<AuditEvent>,
        _change: Option<(&'a str, i64, &'a ChangeState)>,
    ) -> BoxFuture<'a, Result<RolloutSaved>> {
        Box::pin(async { Err(no_rollouts()) })
    }

    // What the server sends back to GitHub (issue 15). Default bodies refuse.

    /// The check run and PR comment kept for a change.
    fn github_publication<'a>(
        &'a self,
        _change_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<GithubPublication>>> {
        Box::pin(async { Err(no_github()) })
    }

    /// Store (insert or replace) the check run and PR comment kept for a change.
    fn save_github_publication<'a>(
        &'a self,
        _p: &'a GithubPublication,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Err(no_github()) })
    }

    /// Store a deployment protection rule request (due at once); `None` when one with this
    /// delivery GUID exists (a redelivery: nothing stored).
    fn insert_github_gate<'a>(
        &'a self,
        _g: NewGithubGate<'a>,
    ) -> BoxFuture<'a, Result<Option<i64>>> {
        Box::pin(async { Err(no_github()) })
    }

    /// Lease up to `limit` due pending protection rule requests to `owner` until `now + lease`.
    fn claim_github_gates<'a>(
        &'a self,
        _owner: &'a str,
        _now: Timestamp,
        _lease: SignedDuration,
        _limit: i64,
    ) -> BoxFuture<'a, Result<Vec<GithubGate>>> {
        Box::pin(async { Err(no_github()) })
    }

    /// Write a leased protection rule request back (and give the lease up); false when `owner`
    /// no longer holds it.
    fn update_github_gate<'a>(
        &'a self,
        _row: i64,
        _owner: &'a str,
        _update: &'a GithubGateUpdate<'a>,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async { Err(no_github()) })
    }

    /// Make the pending protection rule requests of commit `sha` due at `now` (its change
    /// changed); how many.
    fn wake_github_gates<'a>(
        &'a self,
        _sha: &'a str,
        _now: Timestamp,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async { Err(no_github()) })
    }

    /// Protection rule requests, newest first.
    fn list_github_gates(&self, _limit: i64) -> BoxFuture<'_, Result<Vec<GithubGate>>> {
        Box::pin(async { Err(no_github()) })
    }

    // Dashboard sessions and bulk reads (issue 18). Default bodies refuse.

    /// Store a new dashboard session.
    fn create_session<'a>(&'a self, _session: &'a SessionRow) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Err(no_dashboard()) })
    }

    /// A dashboard session by id (the digest of its cookie secret).
    fn find_session<'a>(&'a self, _id: &'a str) -> BoxFuture<'a, Result<Option<SessionRow>>> {
        Box::pin(async { Err(no_dashboard()) })
    }

    /// End a dashboard session; false when none has this id.
    fn delete_session<'a>(&'a self, _id: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async { Err(no_dashboard()) })
    }

    /// Delete sessions that expired at or before `now_us`; how many.
    fn delete_expired_sessions(&self, _now_us: i64) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async { Err(no_dashboard()) })
    }

    /// The changes with these ids (any order; unknown ids are left out).
    fn changes_by_id<'a>(
        &'a self,
        _ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Versioned<ChangeState>>>> {
        Box::pin(async { Err(no_dashboard()) })
    }

    /// The changes with these ids, each as its summary row and its document (any order; unknown
    /// ids are left out): what the dashboard's listing re-reads of the changes written since it
    /// was last read.
    fn change_rows_by_id<'a>(
        &'a self,
        _ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<ChangeRow>>> {
        Box::pin(async { Err(no_dashboard()) })
    }

    /// Several change writes (each a compare-and-swap on its version, with its audit event) in
    /// one transaction: all are stored, or none (false) when any change is no longer at its
    /// expected version. One commit for a delivery that updates many changes (a deployment of a
    /// commit several changes share).
    fn update_changes<'a>(&'a self, writes: Vec<ChangeWrite<'a>>) -> BoxFuture<'a, Result<bool>> {
        let _ = writes;
        Box::pin(async { Err(no_github()) })
    }

    /// The changes whose head commit is `sha` (and, with `merged`, those whose pull request was
    /// merged as `sha`), by index (migration 400), never by reading every change. Newest first.
    fn changes_at_commit<'a>(
        &'a self,
        _sha: &'a str,
        _merged: bool,
    ) -> BoxFuture<'a, Result<Vec<Versioned<ChangeState>>>> {
        Box::pin(async { Err(no_github()) })
    }

    /// Ids of the changes with an active server-run rollout.
    fn active_rollout_changes(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async { Err(no_dashboard()) })
    }

    /// Ids of the changes whose rollouts were written last, newest first (at most `limit`).
    fn recent_rollout_changes(&self, _limit: i64) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async { Err(no_dashboard()) })
    }
}

impl ServerStore for Store {
    fn backend(&self) -> Backend {
        Store::backend(self)
    }

    fn now(&self) -> Timestamp {
        Store::now(self)
    }

    fn audit_log(&self) -> &Store {
        self
    }

    fn ping(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.ping_db())
    }

    fn token_count(&self) -> BoxFuture<'_, Result<i64>> {
        Box::pin(self.count_tokens())
    }

    fn create_token<'a>(&'a self, token: NewTokenRow<'a>) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.insert_token(token))
    }

    fn find_token<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<TokenRow>>> {
        Box::pin(self.select_token(id))
    }

    fn list_tokens(&self) -> BoxFuture<'_, Result<Vec<TokenInfo>>> {
        Box::pin(self.select_tokens())
    }

    fn revoke_token<'a>(&'a self, id: &'a str, by: &'a str) -> BoxFuture<'a, Result<Revocation>> {
        Box::pin(self.update_token_revoked(id, by))
    }

    fn change<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Versioned<ChangeState>>>> {
        Box::pin(self.select_change(id))
    }

    fn change_and_world<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ChangeAndWorld>>> {
        Box::pin(self.select_change_and_world(id))
    }

    fn idempotent<'a>(
        &'a self,
        person: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(self.select_idempotent(person, key))
    }

    fn create_change<'a>(
        &'a self,
        state: &'a ChangeState,
        event: AuditEvent,
        idempotency: Option<(&'a str, &'a str)>,
    ) -> BoxFuture<'a, Result<Versioned<ChangeState>>> {
        Box::pin(self.insert_change(state, event, idempotency))
    }

    fn update_change<'a>(
        &'a self,
        id: &'a str,
        expected: i64,
        state: &'a ChangeState,
        event: AuditEvent,
    ) -> BoxFuture<'a, Result<Option<Versioned<ChangeState>>>> {
        Box::pin(self.cas_change(id, expected, state, event))
    }

    fn list_changes(&self) -> BoxFuture<'_, Result<Vec<ChangeSummary>>> {
        Box::pin(self.select_changes())
    }

    fn world(&self) -> BoxFuture<'_, Result<Versioned<WorldState>>> {
        Box::pin(self.select_world())
    }

    fn update_world<'a>(
        &'a self,
        expected: i64,
        world: &'a WorldState,
        event: AuditEvent,
    ) -> BoxFuture<'a, Result<Option<Versioned<WorldState>>>> {
        Box::pin(self.cas_world(expected, world, event))
    }

    fn record(&self, event: AuditEvent) -> BoxFuture<'_, Result<Appended>> {
        Box::pin(self.append(event))
    }

    fn insert_delivery<'a>(&'a self, d: NewDelivery<'a>) -> BoxFuture<'a, Result<Received>> {
        Box::pin(self.insert_delivery_row(d))
    }

    fn claim_deliveries<'a>(
        &'a self,
        owner: &'a str,
        now: Timestamp,
        lease: SignedDuration,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<Delivery>>> {
        Box::pin(self.claim_delivery_rows(owner, now, lease, limit))
    }

    fn complete_delivery<'a>(
        &'a self,
        row: i64,
        owner: &'a str,
        outcome: &'a serde_json::Value,
        at: Timestamp,
        write: Option<WorldWrite<'a>>,
    ) -> BoxFuture<'a, Result<Completion>> {
        Box::pin(self.complete_delivery_row(row, owner, outcome, at, write))
    }

    fn fail_delivery<'a>(
        &'a self,
        row: i64,
        owner: &'a str,
        error: &'a str,
        at: Timestamp,
        retry_at: Option<Timestamp>,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.fail_delivery_row(row, owner, error, at, retry_at))
    }

    fn pending_after<'a>(
        &'a self,
        source: DeliverySource,
        subject: &'a str,
        row: i64,
        now: Timestamp,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<Delivery>>> {
        Box::pin(self.select_pending_after(source, subject, row, now, limit))
    }

    fn complete_deliveries<'a>(
        &'a self,
        owner: &'a str,
        leased: i64,
        rows: &'a [(i64, serde_json::Value)],
        at: Timestamp,
        event: Option<AuditEvent>,
    ) -> BoxFuture<'a, Result<Completion>> {
        Box::pin(self.complete_delivery_rows(owner, leased, rows, at, event))
    }

    fn list_deliveries(
        &self,
        status: Option<DeliveryStatus>,
        source: Option<DeliverySource>,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<Delivery>>> {
        Box::pin(self.select_deliveries(status, source, limit))
    }

    fn retry_delivery<'a>(
        &'a self,
        row: i64,
        by: &'a str,
        at: Timestamp,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.retry_delivery_row(row, by, at))
    }

    fn claim_notifications<'a>(
        &'a self,
        owner: &'a str,
        now: Timestamp,
        lease: SignedDuration,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<Notification>>> {
        Box::pin(self.claim_notification_rows(owner, now, lease, limit))
    }

    fn finish_notification<'a>(
        &'a self,
        id: i64,
        owner: &'a str,
        status: NotificationStatus,
        receipt: &'a serde_json::Value,
        at: Timestamp,
        write: Option<NoticeWrite<'a>>,
    ) -> BoxFuture<'a, Result<Finished>> {
        Box::pin(self.finish_notification_row(id, owner, status, receipt, at, write))
    }

    fn fail_notification<'a>(
        &'a self,
        id: i64,
        owner: &'a str,
        error: &'a str,
        at: Timestamp,
        retry_at: Option<Timestamp>,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.fail_notification_row(id, owner, error, at, retry_at))
    }

    fn list_notifications<'a>(
        &'a self,
        status: Option<NotificationStatus>,
        subject: Option<&'a str>,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<Notification>>> {
        Box::pin(self.select_notifications(status, subject, limit))
    }

    fn retry_notification<'a>(
        &'a self,
        id: i64,
        by: &'a str,
        at: Timestamp,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.retry_notification_row(id, by, at))
    }

    fn start_rollout<'a>(
        &'a self,
        rollout: NewRollout<'a>,
        expected: i64,
        state: &'a ChangeState,
        event: AuditEvent,
    ) -> BoxFuture<'a, Result<RolloutStart>> {
        Box::pin(self.insert_rollout_row(rollout, (expected, state), event))
    }

    fn rollout<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<RolloutRow>>> {
        Box::pin(self.select_rollout_row(id))
    }

    fn change_rollouts<'a>(&'a self, change_id: &'a str) -> BoxFuture<'a, Result<Vec<RolloutRow>>> {
        Box::pin(self.select_change_rollouts(change_id))
    }

    fn due_rollouts<'a>(
        &'a self,
        now_us: i64,
        owner: &'a str,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<String>>> {
        Box::pin(self.select_due_rollouts(now_us, owner, limit))
    }

    fn lease_rollout<'a>(
        &'a self,
        id: &'a str,
        owner: &'a str,
        now_us: i64,
        until_us: i64,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.update_rollout_lease(id, owner, now_us, until_us))
    }

    fn release_rollout<'a>(&'a self, id: &'a str, owner: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.clear_rollout_lease(id, owner))
    }

    fn save_rollout<'a>(
        &'a self,
        write: RolloutWrite<'a>,
        event: Option<AuditEvent>,
        change: Option<(&'a str, i64, &'a ChangeState)>,
    ) -> BoxFuture<'a, Result<RolloutSaved>> {
        Box::pin(self.save_rollout_row(write, event, change))
    }

    fn github_publication<'a>(
        &'a self,
        change_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<GithubPublication>>> {
        Box::pin(self.select_github_publication(change_id))
    }

    fn save_github_publication<'a>(
        &'a self,
        p: &'a GithubPublication,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.upsert_github_publication(p))
    }

    fn insert_github_gate<'a>(
        &'a self,
        g: NewGithubGate<'a>,
    ) -> BoxFuture<'a, Result<Option<i64>>> {
        Box::pin(self.insert_github_gate_row(g))
    }

    fn claim_github_gates<'a>(
        &'a self,
        owner: &'a str,
        now: Timestamp,
        lease: SignedDuration,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<GithubGate>>> {
        Box::pin(self.claim_github_gate_rows(owner, now, lease, limit))
    }

    fn update_github_gate<'a>(
        &'a self,
        row: i64,
        owner: &'a str,
        update: &'a GithubGateUpdate<'a>,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.update_github_gate_row(row, owner, update))
    }

    fn wake_github_gates<'a>(&'a self, sha: &'a str, now: Timestamp) -> BoxFuture<'a, Result<u64>> {
        Box::pin(self.wake_github_gate_rows(sha, now))
    }

    fn list_github_gates(&self, limit: i64) -> BoxFuture<'_, Result<Vec<GithubGate>>> {
        Box::pin(self.select_github_gate_rows(limit))
    }
    fn create_session<'a>(&'a self, session: &'a SessionRow) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.insert_session(session))
    }

    fn find_session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<SessionRow>>> {
        Box::pin(self.select_session(id))
    }

    fn delete_session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.delete_session_row(id))
    }

    fn delete_expired_sessions(&self, now_us: i64) -> BoxFuture<'_, Result<u64>> {
        Box::pin(self.delete_expired_session_rows(now_us))
    }

    fn changes_by_id<'a>(
        &'a self,
        ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Versioned<ChangeState>>>> {
        Box::pin(self.select_change_docs(ids))
    }

    fn change_rows_by_id<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<Vec<ChangeRow>>> {
        Box::pin(self.select_change_rows(ids))
    }

    fn changes_at_commit<'a>(
        &'a self,
        sha: &'a str,
        merged: bool,
    ) -> BoxFuture<'a, Result<Vec<Versioned<ChangeState>>>> {
        Box::pin(self.select_changes_at_commit(sha, merged))
    }

    fn update_changes<'a>(&'a self, writes: Vec<ChangeWrite<'a>>) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.cas_changes(writes))
    }

    fn active_rollout_changes(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(self.select_active_rollout_changes())
    }

    fn recent_rollout_changes(&self, limit: i64) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(self.select_recent_rollout_changes(limit))
    }
}

/// One write of [`ServerStore::update_changes`].
pub struct ChangeWrite<'a> {
    /// The change.
    pub id: &'a str,
    /// The version it must still be at.
    pub expected: i64,
    /// Its new state.
    pub state: &'a ChangeState,
    /// The write's audit event.
    pub event: AuditEvent,
}

/// What a store without dashboard support answers to its methods.
fn no_dashboard() -> crate::StoreError {
    crate::StoreError::Invalid("this store does not keep dashboard sessions".into())
}

/// What a store without server-run rollouts answers to their methods.
fn no_rollouts() -> crate::StoreError {
    crate::StoreError::Invalid("this store does not keep server-run rollouts".into())
}

/// What a store that keeps nothing for GitHub answers to those methods.
fn no_github() -> crate::StoreError {
    crate::StoreError::Invalid("this store keeps no GitHub check runs or protection rules".into())
}

/// What a store without the notification outbox answers to its methods.
fn no_outbox<T: Send + 'static>() -> BoxFuture<'static, Result<T>> {
    Box::pin(async {
        Err(crate::StoreError::Invalid(
            "this store does not keep notifications".into(),
        ))
    })
}

/// The answer of a store that does not implement an optional method.
fn unsupported<T: Send + 'static>() -> BoxFuture<'static, Result<T>> {
    Box::pin(async {
        Err(crate::StoreError::Invalid(
            "this store does not keep webhook deliveries".into(),
        ))
    })
}

/// A stored JSON document, parsed.
fn parse_doc<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| crate::StoreError::Corrupt(format!("stored {what} does not parse: {e}")))
}

/// A document to store, as JSON.
fn to_doc<T: Serialize>(what: &str, value: &T) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| crate::StoreError::Invalid(format!("{what} cannot be stored as JSON: {e}")))
}

/// Append the audit event of a document write, recording what it stored (`state`: table, id,
/// version, SHA-256 of the stored bytes) so `audit verify` can prove the row. The event is
/// checked against the policy's fields first; only here is `state` set.
async fn append_with_state(
    tx: &mut crate::Tx,
    mut event: AuditEvent,
    state: StateRef,
) -> Result<Appended> {
    event.validate(tx.store().inner.fields.as_ref())?;
    event.state = Some(state);
    tx.append_inner(event, None).await
}

/// End a compare-and-swap write: when exactly one row matched the expected version, append the
/// audit event (with the `state` it stored) and commit both; otherwise roll back (`None`:
/// another writer got there first).
async fn finish_cas<T: Clone>(
    mut tx: crate::Tx,
    rows: u64,
    event: AuditEvent,
    state: StateRef,
    value: &T,
    version: i64,
) -> Result<Option<Versioned<T>>> {
    if rows != 1 {
        tx.rollback().await?;
        return Ok(None);
    }
    append_with_state(&mut tx, event, state).await?;
    tx.commit().await?;
    Ok(Some(Versioned {
        value: value.clone(),
        version,
    }))
}
