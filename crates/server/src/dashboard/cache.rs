//! What the change list shows of each change beyond the store's summary row (repository, required
//! and missing roles, authors, requested deploy time, emergency), computed from the change
//! document and the world and kept per (change version, world version).
//!
//! Every write of a change increments its version and every write of the world its version, so
//! an entry is exact for the versions it names; a list request reads the summaries (one query,
//! as `GET /api/v1/changes` does) and the world, and re-reads only the documents whose version
//! moved ([`changegate_store::ServerStore::changes_by_id`], in chunks). Nothing here decides:
//! the change page and every form re-read the document and ask the gate.
//!
//! The whole listing is kept too, stamped with the audit log's size when it was read. Every
//! write of a change or of the world appends its audit event in the same transaction (the
//! [`changegate_store::ServerStore`] contract), so while the log's size has not moved, neither
//! has anything the listing shows: a request then reads one row (the log head) instead of every
//! summary, and this holds across replicas, since the log is in the shared database. The stamp is
//! read before the listing, so a write that lands in between only makes the next request read
//! again (ADR 0032).
//!
//! When the log has grown by a few events, the listing is brought forward from them rather than
//! read again: the store sets each document write's event's `state` (table, id, version) and
//! nothing else does, so the events since the stamp name every change written since. Those rows
//! are re-read (one query) and put in place; the rest is shared with the kept listing. An entry
//! reads the world only through its teams and aliases (an emergency's also through its
//! incident): a world write re-reads the world row and recomputes only the entries it can
//! change (emergencies; with new teams, the changes with approvals; with new aliases, those
//! whose authors' keys moved, and the changes with approvals). A new change is read and added.
//! A gap in the events (pruned) or many events read everything again (ADR 0033).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use changegate_audit::StateTable;
use changegate_gate::{ChangeState, WorldState};
use changegate_policy::Policy;
use changegate_store::EventFilter;
use jiff::Timestamp;

use crate::AppState;
use crate::db::ChangeSummary;
use crate::error::ApiError;

/// One change as the list needs it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Change version it was computed at.
    pub version: i64,
    /// World version it was computed at.
    pub world_version: i64,
    /// The generations of the world's people (teams, aliases) it was computed with: what an
    /// entry depends on in the world, unless the change is an emergency (then its incident too,
    /// and the entry is exact only for `world_version`).
    pub people_gen: PeopleGen,
    /// Whether the change has approvals on record: without any, who holds which role (the
    /// teams) changes nothing the entry shows.
    pub approved: bool,
    /// The alias keys its authors, co-authors and last pusher are looked up by (trimmed, and
    /// trimmed lower-case): without approvals, the only aliases the entry reads.
    pub idents: Box<[String]>,
    /// Repository.
    pub repository: String,
    /// Required roles.
    pub required: Vec<String>,
    /// Required roles without a valid approval.
    pub missing: Vec<String>,
    /// Whether the change takes approvals now (its status).
    pub accepts_approvals: bool,
    /// Authors, co-authors and last pusher (separation of duties: they never approve it).
    pub people: Vec<String>,
    /// When the author wants to deploy.
    pub requested_deploy_at: Option<Timestamp>,
    /// An emergency is declared.
    pub emergency: bool,
}

impl Entry {
    /// From a change document and the world.
    pub fn of(
        policy: &Policy,
        state: &ChangeState,
        world: &WorldState,
        version: i64,
        world_version: i64,
        people_gen: PeopleGen,
    ) -> Entry {
        let (required, missing) = match changegate_gate::requirements(policy, state) {
            Ok(req) => {
                let out = changegate_gate::approval::evaluate(policy, state, world, &req);
                (out.required, out.missing)
            }
            Err(_) => (Vec::new(), Vec::new()),
        };
        let c = &state.change;
        let mut people: Vec<String> = c
            .authors
            .iter()
            .chain(&c.co_authors)
            .chain(&c.last_pusher)
            .map(|p| changegate_gate::people::canonical(world, p))
            .collect();
        people.sort();
        people.dedup();
        let mut idents: Vec<String> = c
            .authors
            .iter()
            .chain(&c.co_authors)
            .chain(&c.last_pusher)
            .flat_map(|p| [p.trim().to_string(), p.trim().to_lowercase()])
            .collect();
        idents.sort();
        idents.dedup();
        Entry {
            idents: idents.into(),
            version,
            world_version,
            people_gen,
            approved: !state.approvals.is_empty(),
            repository: c.repository.clone(),
            required,
            missing,
            accepts_approvals: state.status.accepts_approvals(),
            people,
            requested_deploy_at: c.requested_deploy_at,
            emergency: state.emergency.is_some(),
        }
    }

    /// Whether `person`, holding `roles`, is what this change waits on: it takes approvals and a
    /// missing role is one the person holds, and the person is none of its authors.
    pub fn waits_on(&self, person: &str, roles: &[String]) -> bool {
        self.accepts_approvals
            && !self.people.iter().any(|p| p == person)
            && self.missing.iter().any(|r| roles.contains(r))
    }
}

/// The per-change entries, by change id.
#[derive(Debug, Default)]
pub struct Cache {
    entries: RwLock<HashMap<String, Arc<Entry>>>,
    listing: RwLock<Option<Arc<Listing>>>,
    people: RwLock<People>,
}

/// The world's teams and aliases last seen, each with its generation: a number that names
/// exactly one value (a new value, or a value seen again after another, gets a new number), so
/// entries computed with the same generation were computed with the same teams (aliases).
#[derive(Debug, Default)]
struct People {
    generation: PeopleGen,
    teams: std::collections::BTreeMap<String, Vec<String>>,
    aliases: std::collections::BTreeMap<String, String>,
    /// For the latest alias generations, the keys whose person that generation changed (added,
    /// removed or mapped elsewhere), oldest first, consecutive.
    alias_changes: std::collections::VecDeque<(u64, std::collections::BTreeSet<String>)>,
}

/// How many alias generations keep the keys they changed.
const ALIAS_HISTORY: usize = 32;

/// Generations of the world's teams and of its aliases.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PeopleGen {
    /// Of the teams.
    pub teams: u64,
    /// Of the aliases.
    pub aliases: u64,
}

/// One listed change: its summary row and its entry.
pub type Row = (ChangeSummary, Arc<Entry>);

/// The list's data: every summary with its entry, and the world.
#[derive(Debug)]
pub struct Listing {
    /// The audit log's size when this was read.
    pub stamp: u64,
    /// Each change with its entry, in the store's order as read, changes created since appended;
    /// shared with the listings brought forward from this one.
    rows: Vec<Arc<Row>>,
    /// Each change's position in `rows`.
    index: Arc<HashMap<String, usize>>,
    /// The world.
    pub world: Arc<WorldState>,
    /// The world's version.
    world_version: i64,
    /// The generations of the world's people.
    people_gen: PeopleGen,
}

impl Listing {
    /// Every change with its entry, in no order a page may rely on (each sorts by its own key).
    pub fn rows(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().map(|r| &**r)
    }
}

/// How many events since the stamp are read to bring the listing forward; more and the whole
/// listing is read again (cheaper than parsing that many records).
const FORWARD_MAX: u64 = 256;

impl Cache {
    /// Every change with its entry: the kept listing while the audit log has not grown, brought
    /// forward from the events since when it has grown by a few, else read again (refreshing the
    /// entries whose versions moved).
    pub async fn listing(&self, s: &AppState) -> Result<Arc<Listing>, ApiError> {
        let stamp = s.db.audit_log().head().await?.size;
        let kept = self
            .listing
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(l) = kept.as_ref().filter(|l| l.stamp == stamp) {
            return Ok(l.clone());
        }
        let forward = match kept.as_ref() {
            Some(k) if k.stamp < stamp && stamp - k.stamp <= FORWARD_MAX => {
                self.forward(s, k, stamp).await?
            }
            _ => None,
        };
        let fresh = match forward {
            Some(l) => Arc::new(l),
            None => Arc::new(self.read(s, stamp).await?),
        };
        let mut kept = self.listing.write().unwrap_or_else(|p| p.into_inner());
        if kept.as_ref().is_none_or(|l| l.stamp <= stamp) {
            *kept = Some(fresh.clone());
        }
        Ok(fresh)
    }

    /// The generations of `world`'s teams and aliases.
    fn people_gen(&self, world: &WorldState) -> PeopleGen {
        let same = |p: &People| p.teams == world.teams && p.aliases == world.aliases;
        {
            let p = self.people.read().unwrap_or_else(|p| p.into_inner());
            if same(&p) {
                return p.generation;
            }
        }
        let mut p = self.people.write().unwrap_or_else(|p| p.into_inner());
        if p.teams != world.teams {
            p.generation.teams += 1;
            p.teams = world.teams.clone();
        }
        if p.aliases != world.aliases {
            let changed: std::collections::BTreeSet<String> = p
                .aliases
                .keys()
                .chain(world.aliases.keys())
                .filter(|k| p.aliases.get(*k) != world.aliases.get(*k))
                .cloned()
                .collect();
            p.generation.aliases += 1;
            let g = p.generation.aliases;
            p.alias_changes.push_back((g, changed));
            if p.alias_changes.len() > ALIAS_HISTORY {
                p.alias_changes.pop_front();
            }
            p.aliases = world.aliases.clone();
        }
        p.generation
    }

    /// Whether entry `e` is exact for change version `version` in a world at `world_version`
    /// whose people are of generations `now`. An entry reads the world only through the aliases
    /// of its authors (and, once it has approvals, of anyone: approvers, holders, team members),
    /// the teams once it has approvals (who holds a role), and for an emergency its incident
    /// (the commander): an entry without approvals outlives alias changes that touch none of its
    /// keys.
    fn still_holds(&self, e: &Entry, version: i64, world_version: i64, now: PeopleGen) -> bool {
        if e.version != version {
            return false;
        }
        if e.emergency {
            return e.world_version == world_version;
        }
        if e.approved {
            return e.people_gen == now;
        }
        let (from, to) = (e.people_gen.aliases, now.aliases);
        if from == to {
            return true;
        }
        if from > to {
            return false;
        }
        let p = self.people.read().unwrap_or_else(|p| p.into_inner());
        // Every generation in (from, to] must still be known.
        if p.alias_changes.front().is_none_or(|(g, _)| *g > from + 1)
            || p.alias_changes.back().is_none_or(|(g, _)| *g < to)
        {
            return false;
        }
        !p.alias_changes
            .iter()
            .filter(|(g, _)| *g > from && *g <= to)
            .any(|(_, keys)| e.idents.iter().any(|i| keys.contains(i)))
    }

    /// `prev` brought forward to the log size `stamp` from the events in between, or `None` when
    /// they call for reading everything (a gap in the events, a change that vanished).
    async fn forward(
        &self,
        s: &AppState,
        prev: &Listing,
        stamp: u64,
    ) -> Result<Option<Listing>, ApiError> {
        let events =
            s.db.audit_log()
                .events(&EventFilter {
                    after_seq: prev.stamp.checked_sub(1),
                    limit: Some(stamp - prev.stamp),
                    ..EventFilter::default()
                })
                .await?;
        // Pruned records leave gaps: then what was written is not known.
        let contiguous = events.len() as u64 == stamp - prev.stamp
            && events
                .iter()
                .zip(prev.stamp..)
                .all(|(e, seq)| e.record.seq == seq);
        if !contiguous {
            return Ok(None);
        }
        let mut ids: Vec<String> = Vec::new();
        let mut world_written = false;
        let mut people = prev.people_gen;
        for e in &events {
            match &e.record.event.state {
                Some(st) if st.table == StateTable::Change => ids.push(st.id.clone()),
                Some(st) if st.table == StateTable::World => world_written = true,
                _ => {}
            }
        }
        let (world, wv) = if world_written {
            // The world is one row. While its people are the same, only the emergencies'
            // entries (which read their incident) and the changes written are computed again.
            let w = s.db.world().await?;
            let now = self.people_gen(&w.value);
            ids.extend(
                prev.rows
                    .iter()
                    .filter(|r| !self.still_holds(&r.1, r.1.version, w.version, now))
                    .map(|r| r.0.id.clone()),
            );
            people = now;
            (Arc::new(w.value), w.version)
        } else {
            (prev.world.clone(), prev.world_version)
        };
        ids.sort();
        ids.dedup();
        let mut rows = prev.rows.clone();
        let mut added: Vec<Arc<Row>> = Vec::new();
        if !ids.is_empty() {
            let read = s.db.change_rows_by_id(&ids).await?;
            if read.len() != ids.len() {
                return Ok(None);
            }
            let mut e = self.entries.write().unwrap_or_else(|p| p.into_inner());
            for (summary, doc) in read {
                let entry = Arc::new(Entry::of(
                    &s.policy,
                    &doc.value,
                    &world,
                    doc.version,
                    wv,
                    people,
                ));
                e.insert(summary.id.clone(), entry.clone());
                let row = Arc::new((summary, entry));
                match prev.index.get(&row.0.id) {
                    Some(&at) => rows[at] = row,
                    None => added.push(row),
                }
            }
        }
        let index = if added.is_empty() {
            prev.index.clone()
        } else {
            // New changes go after the kept rows: the listing's order is no page's (each sorts
            // what it shows by its own key, ties by id), so it need not be the store's.
            rows.extend(added);
            Arc::new(
                rows.iter()
                    .enumerate()
                    .map(|(i, r)| (r.0.id.clone(), i))
                    .collect(),
            )
        };
        Ok(Some(Listing {
            stamp,
            rows,
            index,
            world,
            world_version: wv,
            people_gen: people,
        }))
    }

    async fn read(&self, s: &AppState, stamp: u64) -> Result<Listing, ApiError> {
        let summaries = s.db.list_changes().await?;
        let world = s.db.world().await?;
        let wv = world.version;
        let pg = self.people_gen(&world.value);
        let stale: Vec<String> = {
            let e = self.entries.read().unwrap_or_else(|p| p.into_inner());
            summaries
                .iter()
                .filter(|c| {
                    e.get(&c.id)
                        .is_none_or(|x| !self.still_holds(x, c.version, wv, pg))
                })
                .map(|c| c.id.clone())
                .collect()
        };
        if !stale.is_empty() {
            let docs = s.db.changes_by_id(&stale).await?;
            let fresh: Vec<(String, Arc<Entry>)> = docs
                .iter()
                .map(|d| {
                    let e = Entry::of(&s.policy, &d.value, &world.value, d.version, wv, pg);
                    (d.value.change.id.clone(), Arc::new(e))
                })
                .collect();
            let mut e = self.entries.write().unwrap_or_else(|p| p.into_inner());
            if e.len() > summaries.len() * 2 + 1024 {
                // Deleted changes' entries: drop everything not listed now.
                let live: std::collections::HashSet<&str> =
                    summaries.iter().map(|c| c.id.as_str()).collect();
                e.retain(|k, _| live.contains(k.as_str()));
            }
            e.extend(fresh);
        }
        let e = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let rows: Vec<Arc<Row>> = summaries
            .into_iter()
            .filter_map(|c| {
                let entry = e.get(&c.id)?.clone();
                Some(Arc::new((c, entry)))
            })
            .collect();
        let index = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.0.id.clone(), i))
            .collect();
        Ok(Listing {
            stamp,
            rows,
            index: Arc::new(index),
            world: Arc::new(world.value),
            world_version: wv,
            people_gen: pg,
        })
    }
}
