//! A seeded year of history (tests/history): every monthly report of 2026 and the four quarterly
//! reviews, checked metric by metric against metrics computed from the generator's ground truth;
//! `verify_export` on an honest export, and on one with an event dropped or altered; every format.

mod history;

use changegate_audit::record::seal;
use changegate_audit::record::write_canonical;
use changegate_audit::tree::{self, Frontier, NodeId, leaf_hash};
use changegate_audit::{Checkpoint, ConsistencyProofFile, LogSigner, Record};
use changegate_report::render::{Format, render};
use changegate_report::verify::verify_export;
use changegate_report::{Code, Period, Proof, ProofPoint, Report, ReportBuilder, Settings, report};
use history::{Expected, History, expected, generate};
use sha2::{Digest, Sha256};

const ORIGIN: &str = "changegate.test/log";

struct Log {
    records: Vec<Record>,
    export: Vec<String>,
    leaves: Vec<[u8; 32]>,
    signer: LogSigner,
}

fn log(h: &History) -> Log {
    let signer = LogSigner::from_seed(ORIGIN, [7; 32]).unwrap();
    let mut records = Vec::new();
    let mut export = Vec::new();
    let mut leaves = Vec::new();
    for (i, (at, ev)) in h.events.iter().enumerate() {
        let salt = [(i % 251) as u8; 32];
        let s = seal(ev.clone(), i as u64, format!("ev_{i:06}"), *at, &salt);
        let lh = leaf_hash(&s.leaf.encode());
        let mut v: serde_json::Value = serde_json::from_slice(&s.record_bytes).unwrap();
        v["leaf_hash"] = hex::encode(lh).into();
        v["salt"] = hex::encode(salt).into();
        export.push(v.to_string());
        leaves.push(lh);
        records.push(s.record);
    }
    Log {
        records,
        export,
        leaves,
        signer,
    }
}

fn node(leaves: &[[u8; 32]], id: NodeId) -> [u8; 32] {
    if id.level == 0 {
        return leaves[id.index as usize];
    }
    let l = node(
        leaves,
        NodeId {
            level: id.level - 1,
            index: id.index * 2,
        },
    );
    let r = node(
        leaves,
        NodeId {
            level: id.level - 1,
            index: id.index * 2 + 1,
        },
    );
    tree::node_hash(&l, &r)
}

fn root(leaves: &[[u8; 32]], size: u64) -> [u8; 32] {
    let mut f = Frontier::new();
    for l in &leaves[..size as usize] {
        f.push(*l);
    }
    f.root()
}

/// The proof the store attaches, built here from the leaves.
fn proof(l: &Log, r: &Report, prev_size: u64) -> Proof {
    let size = l.leaves.len() as u64;
    let head_root = root(&l.leaves, size);
    let note = l.signer.sign(&Checkpoint {
        origin: ORIGIN.into(),
        size,
        root: head_root,
    });
    let end = r.body.population.size_at_end;
    let c = ConsistencyProofFile {
        kind: "consistency".into(),
        origin: ORIGIN.into(),
        old_size: prev_size,
        new_size: size,
        old_root: root(&l.leaves, prev_size),
        new_root: head_root,
        proof: tree::consistency_path(prev_size, size, &mut |id| node(&l.leaves, id)),
        old_checkpoint: None,
        new_checkpoint: Some(note.clone()),
    };
    Proof {
        origin: ORIGIN.into(),
        verifier_key: l.signer.verifier().to_string(),
        checkpoint_note: note,
        checkpoint: ProofPoint {
            size,
            root: hex::encode(head_root),
            note: "head".into(),
        },
        period_end: ProofPoint {
            size: end,
            root: hex::encode(root(&l.leaves, end)),
            note: "end".into(),
        },
        previous: Some(ProofPoint {
            size: prev_size,
            root: hex::encode(c.old_root),
            note: "previous".into(),
        }),
        consistency: Some(c),
    }
}

fn metric(r: &Report, id: &str) -> Option<f64> {
    r.body
        .metrics
        .iter()
        .find(|m| m.id == id)
        .unwrap_or_else(|| panic!("metric {id} missing"))
        .value
}

fn missed(r: &Report, id: &str) -> bool {
    r.body.metrics.iter().find(|m| m.id == id).unwrap().missed
}

fn check(r: &Report, e: &Expected) {
    let p = &r.period;
    let n = |v: usize| Some(v as f64);
    assert_eq!(
        metric(r, "deployments"),
        n(e.deployments),
        "{p} deployments"
    );
    for (i, c) in ["low-risk", "medium-risk", "high-risk", "emergency"]
        .iter()
        .enumerate()
    {
        assert_eq!(
            metric(r, &format!("deployments-{c}")),
            n(e.by_category[i]),
            "{p} {c}"
        );
        assert_eq!(r.body.by_category[i].deployments, e.by_category[i] as u64);
        assert_eq!(
            r.body.by_category[i].followed_by_incident, e.followed_by_incident[i] as u64,
            "{p} {c} followed by incident"
        );
    }
    assert_eq!(
        metric(r, "rollback-rate"),
        e.rollback_rate,
        "{p} rollback rate"
    );
    assert_eq!(
        missed(r, "rollback-rate"),
        e.rollback_rate.is_some_and(|v| v >= 5.0),
        "{p}"
    );
    assert_eq!(
        metric(r, "window-violations"),
        n(e.window_violations),
        "{p} window violations"
    );
    assert_eq!(missed(r, "window-violations"), e.window_violations > 0);
    assert_eq!(
        metric(r, "approval-bypasses"),
        n(e.bypasses),
        "{p} bypasses"
    );
    assert_eq!(missed(r, "approval-bypasses"), e.bypasses > 0);
    assert_eq!(metric(r, "mttd-low-risk"), e.mttd_low, "{p} mttd");
    assert_eq!(
        missed(r, "mttd-low-risk"),
        e.mttd_low.is_some_and(|v| v >= 2.0),
        "{p}"
    );
    assert_eq!(
        metric(r, "emergency-changes"),
        n(e.emergencies),
        "{p} emergencies"
    );
    assert_eq!(
        metric(r, "security-patches"),
        n(e.security),
        "{p} security patches"
    );
    assert_eq!(
        metric(r, "exceptions-used"),
        n(e.exceptions),
        "{p} exceptions"
    );
    assert_eq!(
        metric(r, "dora-deployment-frequency"),
        Some(e.frequency),
        "{p} frequency"
    );
    assert_eq!(metric(r, "dora-lead-time"), e.lead_median, "{p} lead time");
    assert_eq!(metric(r, "dora-change-failure-rate"), e.cfr, "{p} cfr");
    assert_eq!(
        metric(r, "dora-time-to-restore"),
        e.restore_median,
        "{p} restore"
    );
    assert_eq!(r.body.changes.len(), e.deployments);
}

#[test]
fn every_month_of_a_seeded_year_matches_the_ground_truth() {
    let h = generate(17, 3);
    assert!(h.changes.len() > 400, "{}", h.changes.len());
    let l = log(&h);
    let settings = Settings::default();
    let mut missed_any = (false, false);
    for m in 1..=12 {
        let period = Period::Month(2026, m);
        let r = report(&period, &l.records, &settings, period.end(), None);
        let e = expected(&h, period.start(), period.end());
        assert!(e.deployments > 10, "{period}: {}", e.deployments);
        check(&r, &e);
        missed_any.0 |= e.bypasses > 0;
        missed_any.1 |= e.bypasses == 0;
    }
    // The seed exercises both a clean month and a month with bypasses.
    assert!(missed_any.0, "no month with an approval bypass");
}

/// The store's path (each record's stored bytes streamed through a `ReportBuilder`, read as
/// views) gives the report the parsed records give, and the digest (written straight from the
/// body) is the SHA-256 of the `Value` path's canonical JSON (docs/adr/0031-report-at-scale.md).
#[test]
fn the_streamed_report_and_its_digest_are_those_of_the_parsed_records() {
    let h = generate(17, 3);
    let l = log(&h);
    let settings = Settings::default();
    let bytes: Vec<Vec<u8>> = l.records.iter().map(Record::canonical).collect();
    let periods = (1..=12)
        .map(|m| Period::Month(2026, m))
        .chain((1..=4).map(|q| Period::Quarter(2026, q)));
    for period in periods {
        let r = report(&period, &l.records, &settings, period.end(), None);
        let mut b = ReportBuilder::new(&period, &settings);
        for x in &bytes {
            b.push_bytes(x).unwrap();
        }
        assert_eq!(
            b.size_at_end(),
            r.body.population.size_at_end,
            "{period} size"
        );
        let streamed = b.finish(period.end(), None);
        assert_eq!(streamed, r, "{period}");
        let v = serde_json::json!({"kind": r.kind, "period": r.period, "body": r.body});
        let mut out = Vec::new();
        write_canonical(&v, &mut out);
        assert_eq!(r.digest, hex::encode(Sha256::digest(&out)), "{period}");
    }
}

#[test]
fn quarterly_reviews_answer_the_four_questions() {
    let h = generate(17, 3);
    let l = log(&h);
    for q in 1..=4 {
        let period = Period::Quarter(2026, q);
        let r = report(
            &period,
            &l.records,
            &Settings::default(),
            period.end(),
            None,
        );
        let e = expected(&h, period.start(), period.end());
        check(&r, &e);
        let qr = r.body.quarterly.as_ref().expect("quarterly section");
        let got: Vec<(String, usize, f64, f64)> = qr
            .approval_by_role
            .iter()
            .map(|x| (x.role.clone(), x.approvals as usize, x.p50_h, x.p90_h))
            .collect();
        assert_eq!(got, e.approval_by_role, "{period} approval bottlenecks");
        assert!(qr.approval_by_person.len() >= qr.approval_by_role.len());
        assert_eq!(
            qr.window_delayed as usize, e.window_delayed,
            "{period} delayed"
        );
        assert_eq!(
            qr.window_delay_p90_h, e.window_delay_p90,
            "{period} delay p90"
        );
        let em: u64 = qr.emergencies_by_month.iter().map(|x| x.1).sum();
        assert_eq!(
            em as usize, e.emergency_declarations,
            "{period} emergencies"
        );
        if q > 1 {
            let prev = Period::Quarter(2026, q - 1);
            let pe = expected(&h, prev.start(), prev.end());
            assert_eq!(
                qr.emergencies_previous_quarter as usize,
                pe.emergency_declarations
            );
            let want = match (em as usize).cmp(&pe.emergency_declarations) {
                std::cmp::Ordering::Greater => "rising",
                std::cmp::Ordering::Less => "falling",
                std::cmp::Ordering::Equal => "flat",
            };
            assert_eq!(qr.emergency_trend, want);
        }
        assert!(!qr.window_slots.is_empty());
        let slots: u64 = qr.window_slots.iter().map(|s| s.deployments).sum();
        assert_eq!(slots as usize, e.deployments);
    }
}

fn honest(h: &History) -> (Log, Report) {
    let l = log(h);
    let period = Period::Month(2026, 11);
    let mut r = report(
        &period,
        &l.records,
        &Settings::default(),
        period.end(),
        None,
    );
    let prev = l
        .records
        .iter()
        .filter(|x| x.recorded_at < Period::Month(2026, 10).end())
        .count() as u64;
    r.proof = Some(proof(&l, &r, prev));
    (l, r)
}

#[test]
fn verify_passes_on_an_honest_export() {
    let h = generate(5, 2);
    let (l, r) = honest(&h);
    let out = verify_export(&r, &l.export.join("\n"), Some(&l.signer.verifier()));
    assert!(out.ok(), "{:#?}", out.failures);
    assert!(out.trusted_key);
    assert!(
        out.facts
            .iter()
            .any(|f| f.contains("exactly the log's population"))
    );
    // Through JSON, as the CLI reads it.
    let back: Report = serde_json::from_slice(&render(&r, Format::Json).unwrap()).unwrap();
    assert!(verify_export(&back, &l.export.join("\n"), None).ok());
}

#[test]
fn verify_fails_when_one_event_is_dropped() {
    let h = generate(5, 2);
    let (l, r) = honest(&h);
    let mut lines = l.export.clone();
    // Drop a deployment of November.
    let i = lines
        .iter()
        .position(|x| x.contains("deployment.start") && x.contains("2026-11-1"))
        .unwrap();
    lines.remove(i);
    let out = verify_export(&r, &lines.join("\n"), Some(&l.signer.verifier()));
    assert!(!out.ok());
    assert_eq!(
        out.failures[0].code,
        Code::ExportIncomplete,
        "{:?}",
        out.failures
    );
    // Dropping the last event (no gap) is caught by the size.
    let mut lines = l.export.clone();
    lines.pop();
    let out = verify_export(&r, &lines.join("\n"), None);
    assert_eq!(out.failures[0].code, Code::ExportIncomplete);
}

#[test]
fn verify_fails_when_one_event_is_altered() {
    let h = generate(5, 2);
    let (l, r) = honest(&h);
    let key = l.signer.verifier();
    let i = l
        .export
        .iter()
        .position(|x| x.contains("rollback.triggered") && x.contains("2026-11-"))
        .or_else(|| {
            l.export
                .iter()
                .position(|x| x.contains("deployment.finish") && x.contains("2026-11-"))
        })
        .unwrap();
    // 1. The record altered, its leaf hash kept: the record no longer hashes to it.
    let mut lines = l.export.clone();
    lines[i] = lines[i]
        .replace("rollback.triggered", "deployment.finish")
        .replace("\"abort\"", "\"complete\"");
    if lines[i] == l.export[i] {
        lines[i] = lines[i].replace("\"complete\"", "\"abort\"");
    }
    let out = verify_export(&r, &lines.join("\n"), Some(&key));
    assert!(
        out.failures
            .iter()
            .any(|f| f.code == Code::ExportRecordAltered),
        "{:?}",
        out.failures
    );
    assert!(
        out.failures.iter().any(|f| f.code == Code::MetricMismatch),
        "{:?}",
        out.failures
    );
    // 2. The leaf hash recomputed too: the tree root no longer matches the signed checkpoint.
    let mut v: serde_json::Value = serde_json::from_str(&lines[i]).unwrap();
    let salt = hex::decode(v["salt"].as_str().unwrap()).unwrap();
    let obj = v.as_object_mut().unwrap();
    obj.remove("leaf_hash");
    obj.remove("salt");
    let mut bytes = Vec::new();
    write_canonical(&v, &mut bytes);
    let rec = Record::parse(&bytes).unwrap();
    let leaf = changegate_audit::LeafData {
        seq: rec.seq,
        recorded_at_us: rec.recorded_at.as_microsecond(),
        commitment: changegate_audit::record::commitment(&salt, &bytes),
    };
    v["leaf_hash"] = hex::encode(leaf_hash(&leaf.encode())).into();
    v["salt"] = hex::encode(&salt).into();
    lines[i] = v.to_string();
    let out = verify_export(&r, &lines.join("\n"), Some(&key));
    assert!(
        out.failures.iter().any(|f| f.code == Code::RootMismatch),
        "{:?}",
        out.failures
    );
    // 3. A report whose metric was edited fails against the honest export.
    let mut edited = r.clone();
    edited.body.metrics[0].value = Some(0.0);
    let out = verify_export(&edited, &l.export.join("\n"), Some(&key));
    assert!(
        out.failures
            .iter()
            .any(|f| f.code == Code::MetricMismatch && f.message.contains("deployments"))
    );
    // 4. A checkpoint signed by another key.
    let other = LogSigner::from_seed(ORIGIN, [9; 32]).unwrap();
    let out = verify_export(&r, &l.export.join("\n"), Some(&other.verifier()));
    assert!(
        out.failures
            .iter()
            .any(|f| f.code == Code::CheckpointInvalid)
    );
}

#[test]
fn every_format_renders_the_population() {
    let h = generate(5, 2);
    let (_, r) = honest(&h);
    let md = String::from_utf8(render(&r, Format::Markdown).unwrap()).unwrap();
    assert!(md.contains("| Rollback rate |"), "{md}");
    assert!(md.contains("MISSING"));
    let html = String::from_utf8(render(&r, Format::Html).unwrap()).unwrap();
    assert!(html.contains("<svg"));
    assert!(html.contains("Deployments by category"));
    let csv = render(&r, Format::Csv).unwrap();
    let mut rd = csv::Reader::from_reader(&csv[..]);
    let header = rd.headers().unwrap().clone();
    assert_eq!(
        header.len(),
        changegate_report::render::CHANGE_COLUMNS.len()
    );
    let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), r.body.changes.len());
    let ci = header.iter().position(|h| h == "change_id").unwrap();
    assert_eq!(&rows[0][ci], r.body.changes[0].change_id);
    // XLSX, read back with calamine.
    use calamine::{Reader, Xlsx};
    let bytes = render(&r, Format::Xlsx).unwrap();
    let mut wb: Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    let names = wb.sheet_names().to_vec();
    assert_eq!(names, vec!["Metrics".to_string(), "Population".to_string()]);
    let pop = wb.worksheet_range("Population").unwrap();
    assert_eq!(pop.height(), 1 + r.body.changes.len());
    assert_eq!(pop.get((0, 0)).unwrap().to_string(), "change_id");
    assert_eq!(
        pop.get((1, 0)).unwrap().to_string(),
        r.body.changes[0].change_id
    );
    let m = wb.worksheet_range("Metrics").unwrap();
    let row = (0..m.height())
        .find(|i| m.get((*i, 0)).map(|c| c.to_string()) == Some("deployments".into()))
        .unwrap();
    assert_eq!(
        m.get((row, 2)).unwrap().to_string().parse::<f64>().unwrap(),
        r.body.changes.len() as f64
    );
}
