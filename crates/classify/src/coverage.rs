//! Line coverage reports (lcov `.info` and Cobertura XML), used to decide whether a source change
//! qualifies as a covered bug fix (`bugfix-covered`) or stays `code-changed`.
//!
//! Report paths are rarely repository-relative (lcov writes absolute `SF:` paths, Cobertura splits
//! `<source>` and `filename`), so a repository path matches a report entry when one is a suffix of
//! the other at a `/` boundary; the longest match wins.

use std::collections::BTreeMap;

use quick_xml::events::Event;

/// Why a coverage report could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CoverageError {
    /// Neither lcov nor Cobertura.
    #[error("coverage report is neither lcov (SF:/DA: records) nor Cobertura XML")]
    UnknownFormat,
    /// Malformed lcov.
    #[error("lcov line {line}: {message}")]
    Lcov {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Malformed XML.
    #[error("Cobertura XML at byte {position}: {message}")]
    Cobertura {
        /// Byte offset.
        position: u64,
        /// What is wrong.
        message: String,
    },
}

/// Hit counts per line, per file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Coverage {
    files: BTreeMap<String, BTreeMap<u32, u64>>,
}

impl Coverage {
    /// Parse an lcov or Cobertura report (detected from the content).
    pub fn parse(text: &str) -> Result<Coverage, CoverageError> {
        let t = text.trim_start_matches('\u{feff}').trim_start();
        if t.starts_with('<') {
            parse_cobertura(t)
        } else if t.lines().any(|l| l.starts_with("SF:")) {
            parse_lcov(t)
        } else {
            Err(CoverageError::UnknownFormat)
        }
    }

    /// Number of files in the report.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether the report has no files.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Hit counts of the instrumented lines of a repository path, when the report has the file.
    pub fn lines(&self, repo_path: &str) -> Option<&BTreeMap<u32, u64>> {
        if let Some(v) = self.files.get(repo_path) {
            return Some(v);
        }
        let mut best: Option<(&String, &BTreeMap<u32, u64>)> = None;
        for (p, v) in &self.files {
            let hit =
                p.ends_with(&format!("/{repo_path}")) || repo_path.ends_with(&format!("/{p}"));
            if hit && best.is_none_or(|(b, _)| p.len() > b.len()) {
                best = Some((p, v));
            }
        }
        best.map(|(_, v)| v)
    }

    fn add(&mut self, file: &str, line: u32, hits: u64) {
        let f = self.files.entry(normalise(file)).or_default();
        let e = f.entry(line).or_insert(0);
        *e = (*e).max(hits);
    }
}

fn normalise(p: &str) -> String {
    let p = p.replace('\\', "/");
    p.strip_prefix("./").unwrap_or(&p).to_string()
}

fn parse_lcov(text: &str) -> Result<Coverage, CoverageError> {
    let mut cov = Coverage::default();
    let mut current: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        let err = |m: &str| CoverageError::Lcov {
            line: i + 1,
            message: m.to_string(),
        };
        if let Some(f) = line.strip_prefix("SF:") {
            current = Some(f.to_string());
            cov.files.entry(normalise(f)).or_default();
        } else if let Some(da) = line.strip_prefix("DA:") {
            let file = current
                .as_deref()
                .ok_or_else(|| err("DA record before any SF record"))?;
            let mut parts = da.split(',');
            let n: u32 = parts
                .next()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| err("bad line number in DA"))?;
            let hits: u64 = parts
                .next()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .map(|h| h.max(0.0) as u64)
                .ok_or_else(|| err("bad hit count in DA"))?;
            cov.add(file, n, hits);
        } else if line == "end_of_record" {
            current = None;
        }
    }
    Ok(cov)
}

fn parse_cobertura(text: &str) -> Result<Coverage, CoverageError> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut cov = Coverage::default();
    let mut file: Option<String> = None;
    let mut saw_root = false;
    loop {
        let pos = reader.buffer_position();
        let ev = reader.read_event().map_err(|e| CoverageError::Cobertura {
            position: pos,
            message: e.to_string(),
        })?;
        match ev {
            Event::Start(e) | Event::Empty(e) => {
                let attr = |name: &[u8]| -> Option<String> {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.as_ref().as_bytes() == name)
                        .map(|a| a.value.into_owned())
                };
                match e.name().as_ref().as_bytes() {
                    b"coverage" => saw_root = true,
                    b"class" => {
                        file = attr(b"filename");
                        if let Some(f) = &file {
                            cov.files.entry(normalise(f)).or_default();
                        }
                    }
                    b"line" => {
                        if let Some(f) = &file {
                            let n = attr(b"number").and_then(|s| s.parse::<u32>().ok());
                            let h = attr(b"hits").and_then(|s| s.parse::<f64>().ok());
                            match (n, h) {
                                (Some(n), Some(h)) => cov.add(&f.clone(), n, h.max(0.0) as u64),
                                _ => {
                                    return Err(CoverageError::Cobertura {
                                        position: pos,
                                        message: "<line> without numeric number/hits".into(),
                                    });
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            Event::End(e) if e.name().as_ref().as_bytes() == b"class" => file = None,
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_root {
        return Err(CoverageError::UnknownFormat);
    }
    Ok(cov)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lcov_with_absolute_paths() {
        let c =
            Coverage::parse("TN:\nSF:/ci/build/src/a.ts\nDA:1,3\nDA:2,0\nend_of_record\n").unwrap();
        let l = c.lines("src/a.ts").unwrap();
        assert_eq!(l.get(&1), Some(&3));
        assert_eq!(l.get(&2), Some(&0));
        assert!(c.lines("src/b.ts").is_none());
        assert!(c.lines("a.ts").is_none() || c.lines("a.ts").is_some());
    }

    #[test]
    fn cobertura() {
        let x = r#"<?xml version="1.0"?><coverage line-rate="0.5"><sources><source>/w</source></sources>
<packages><package name="p"><classes><class name="a" filename="src/a.ts"><lines>
<line number="1" hits="1"/><line number="2" hits="0"/></lines></class></classes></package></packages></coverage>"#;
        let c = Coverage::parse(x).unwrap();
        assert_eq!(c.lines("src/a.ts").unwrap().len(), 2);
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(matches!(
            Coverage::parse("hello"),
            Err(CoverageError::UnknownFormat)
        ));
        assert!(Coverage::parse("SF:a\nDA:x,1\n").is_err());
        assert!(
            Coverage::parse("<coverage><class filename='a'><line number='x'/></class>").is_err()
        );
    }
}
